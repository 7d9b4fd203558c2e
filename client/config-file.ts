import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { LoopConfig, loopConfigProblems } from '../core/config.js';
import { contentHash } from '../core/hash.js';

/** Thrown when a loop config file does not parse or validate; lists every problem with its path (and line). */
export class LoopConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid loop config:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'LoopConfigError';
  }
}

/**
 * Reads a loop config (YAML, or JSON, which is YAML) and validates it with the one schema, reporting every problem at
 * once with its path and line before anything starts. Returns the parsed config and its content hash.
 */
export function loadLoopConfig(
  file: string,
  overrides: { name?: string } = {},
): { config: LoopConfig; configHash: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new LoopConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0)
    throw new LoopConfigError(
      file,
      doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`),
    );
  const raw = doc.toJS() as Record<string, unknown> | null;
  const parsed = LoopConfig.safeParse({ ...(raw ?? {}), ...(overrides.name ? { name: overrides.name } : {}) });
  if (!parsed.success) {
    const lineOf = (path: PropertyKey[]): string => {
      const node = doc.getIn(path as (string | number)[], true) as { range?: [number, number, number] } | undefined;
      const offset = node?.range?.[0];
      return offset === undefined ? '' : ` (line ${text.slice(0, offset).split('\n').length})`;
    };
    const problems = loopConfigProblems(parsed.error).map(
      (problem, i) => problem + lineOf(parsed.error.issues[i]!.path),
    );
    throw new LoopConfigError(file, problems);
  }
  return { config: parsed.data, configHash: contentHash(parsed.data) };
}
