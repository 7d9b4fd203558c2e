import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root: the nearest folder above this module whose package.json is looptool's. Found by walking up
 * rather than by counting `..`, so the answer is the same from the TypeScript sources and from the compiled `dist/`.
 */
function findProjectRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'looptool')
      return dir;
    if (path.dirname(dir) === dir) throw new Error(`no looptool package.json above ${fileURLToPath(import.meta.url)}`);
  }
}

/** The repository root: everything the project ships (data/, recipes/) or installs by itself (.tools/) lives under it. */
export const PROJECT_ROOT = findProjectRoot();

/** A path inside the project; relative paths in loop configs (eval sets under `data/`) are resolved this way. */
export function projectPath(...parts: string[]): string {
  return path.resolve(PROJECT_ROOT, ...parts);
}

/** Where the project installs its own tools (`<root>/.tools`), e.g. the Temporal CLI venv. */
export const TOOLS_DIR = projectPath('.tools');

/** Where local state lives when `LOOPTOOL_DATA_DIR` is not set. */
export const DEFAULT_DATA_DIR = projectPath('.data');
