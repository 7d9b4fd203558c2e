import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: everything the project installs or writes by itself lives under it. */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where local services keep their state (`LOOPTOOL_DATA_DIR`, default `<root>/.data`). */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.LOOPTOOL_DATA_DIR?.trim() || path.join(PROJECT_ROOT, '.data'));
}

/** Where the project installs its own tools (`<root>/.tools`), e.g. the Temporal CLI venv. */
export const TOOLS_DIR = path.join(PROJECT_ROOT, '.tools');
