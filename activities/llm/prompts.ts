import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PROMPTS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'prompts');

/** A prompt template: its version (the file name without `.md`) and its system and user parts. */
export interface PromptTemplate {
  version: string;
  system: string;
  user: string;
}

export type PromptName = 'judge' | 'generator' | 'validator' | 'probe-system';

const FILE = /^(judge|generator|validator|probe-system)\.v(\d+)\.md$/;

/**
 * Loads every prompt template once (at worker start): `<name>.v<N>.md` with `## system` / `## user` sections. The
 * newest version of each name is the default; older ones stay loadable so a loop pinned to one keeps it.
 */
export function loadPrompts(dir: string = PROMPTS_DIR): Map<string, PromptTemplate> {
  const templates = new Map<string, PromptTemplate>();
  for (const file of readdirSync(dir).sort()) {
    const match = FILE.exec(file);
    if (!match) continue;
    const text = readFileSync(path.join(dir, file), 'utf8');
    const system = section(text, 'system');
    if (system === undefined) throw new Error(`${path.join(dir, file)}: missing a "## system" section`);
    templates.set(file.slice(0, -'.md'.length), {
      version: file.slice(0, -'.md'.length),
      system,
      user: section(text, 'user') ?? '',
    });
  }
  return templates;
}

/** The newest version of a prompt, or the version named. */
export function pickPrompt(templates: Map<string, PromptTemplate>, name: PromptName, version?: string): PromptTemplate {
  if (version) {
    const pinned = templates.get(version);
    if (!pinned || !version.startsWith(`${name}.v`)) throw new Error(`no ${name} prompt version ${version}`);
    return pinned;
  }
  const candidates = [...templates.keys()].filter((key) => key.startsWith(`${name}.v`));
  const newest = candidates.sort((a, b) => Number(a.split('.v')[1]) - Number(b.split('.v')[1])).at(-1);
  if (!newest) throw new Error(`no ${name} prompt template`);
  return templates.get(newest)!;
}

function section(text: string, name: string): string | undefined {
  const start = text.indexOf(`## ${name}\n`);
  if (start < 0) return undefined;
  const body = text.slice(start + name.length + 4);
  const next = body.search(/^## /m);
  return (next < 0 ? body : body.slice(0, next)).trim();
}

/**
 * Fills `{{name}}` placeholders. A placeholder without a value is an error, not an empty string: a prompt silently
 * missing its conversation would still get answers, just meaningless ones.
 */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`prompt placeholder {{${key}}} has no value`);
    return value;
  });
}
