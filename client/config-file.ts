import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { type Document, isMap, isScalar, parseDocument } from 'yaml';
import { formatConfigPath, LoopConfig, loopConfigIssues } from '../core/config.js';
import { contentHash } from '../core/hash.js';
import { firstInvalidUtf8 } from '../datasets/read-records.js';

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
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new LoopConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  // Decoding would turn bad bytes into U+FFFD silently, and a model name or path would not be what was written.
  if (!isUtf8(bytes)) {
    const at = firstInvalidUtf8(bytes);
    const line = bytes.subarray(0, at).toString('latin1').split('\n').length;
    throw new LoopConfigError(file, [`line ${line}: invalid UTF-8 at byte ${at} of the file`]);
  }
  const text = bytes.toString('utf8');
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0)
    throw new LoopConfigError(
      file,
      doc.errors.map((e) => `line ${e.linePos?.[0]?.line ?? '?'}: ${e.message.split('\n')[0]}`),
    );
  const raw = doc.toJS() as unknown;
  // A config is a mapping; a list or a bare word at the top would otherwise be spread into a half-empty object.
  if (raw !== null && raw !== undefined && (typeof raw !== 'object' || Array.isArray(raw)))
    throw new LoopConfigError(file, [`line 1: the config must be a mapping of keys (name:, data:, models:, …)`]);
  const input = {
    ...((raw as Record<string, unknown> | null) ?? {}),
    ...(overrides.name ? { name: overrides.name } : {}),
  };
  const parsed = LoopConfig.safeParse(input);
  if (!parsed.success) {
    // In file order, as a person fixes them; problems with no line (a missing top-level key) come last.
    const located = loopConfigIssues(parsed.error, input).map((issue) => {
      const where = lineOf(doc, text, issue.path);
      return {
        line: where.line ?? Number.MAX_SAFE_INTEGER,
        text: `${formatConfigPath(issue.path)}: ${issue.message}${where.text}`,
      };
    });
    located.sort((a, b) => a.line - b.line);
    throw new LoopConfigError(
      file,
      located.map((problem) => problem.text),
    );
  }
  return { config: parsed.data, configHash: contentHash(parsed.data) };
}

/**
 * ` (line n)` for the node at `path`: the key's own line when the last step is a key of a mapping (an unknown key has
 * no value the schema knows, and a block value starts on the line after its key), else the value's line. A missing
 * key is not in the file: the line of the mapping it is missing from is given instead. '' when nothing of the path is
 * in the file (`--name`, an empty file).
 */
function lineOf(doc: Document, text: string, path: readonly PropertyKey[]): { line?: number; text: string } {
  const lineAt = (offset: number) => text.slice(0, offset).split('\n').length;
  const steps = path.map((part) => (typeof part === 'number' ? part : String(part)));
  for (let depth = steps.length; depth > 0; depth--) {
    const last = steps[depth - 1];
    const parent = depth === 1 ? doc.contents : doc.getIn(steps.slice(0, depth - 1), true);
    let offset: number | undefined;
    if (typeof last === 'string' && isMap(parent)) {
      const pair = parent.items.find((item) => isScalar(item.key) && String(item.key.value) === last);
      if (pair && isScalar(pair.key)) offset = pair.key.range?.[0];
    } else {
      offset = (doc.getIn(steps.slice(0, depth), true) as { range?: [number, number, number] } | undefined)?.range?.[0];
    }
    if (offset !== undefined) {
      const line = lineAt(offset);
      return {
        line,
        text:
          depth === steps.length
            ? ` (line ${line})`
            : ` (in \`${formatConfigPath(path.slice(0, depth))}\`, line ${line})`,
      };
    }
  }
  return { text: '' };
}
