import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { projectPath, TOOLS_DIR } from './paths.js';

/**
 * The project's Python environments, one venv per requirements file in `recipes/requirements/<name>.txt` (exact pins,
 * registries only), installed under `.tools/py-<name>` on first use and reused while the file is unchanged. Recipes,
 * the CPU model server and the tests that run them all take their interpreter from here, so a fresh clone installs
 * what it needs by itself.
 */
export interface PythonEnv {
  name: string;
  dir: string;
  python: string;
}

const LOCK_STALE_MS = 60 * 60 * 1000;

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Holds `<dir>.lock` while installing, so parallel test files (and CLI calls) install once, not twice at a time. */
function withLock<T>(dir: string, fn: () => T): T {
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch {
      // A lock older than any install is left over from a killed process.
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmSync(lock, { force: true });
      sleepSync(1_000);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** The requirements file of an environment. */
export function requirementsFile(name: string): string {
  return projectPath('recipes', 'requirements', `${name}.txt`);
}

/**
 * The venv for `recipes/requirements/<name>.txt`, created or updated when the file changed since the last install.
 * Throws with pip's own last lines when the install fails (a missing wheel, no python3-venv).
 */
export function ensurePythonEnv(
  name: string,
  options: { log?: (line: string) => void; toolsDir?: string } = {},
): PythonEnv {
  const log = options.log ?? (() => {});
  const dir = path.join(options.toolsDir ?? TOOLS_DIR, `py-${name}`);
  const python = path.join(dir, 'bin', 'python');
  const requirements = requirementsFile(name);
  const digest = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const stamp = path.join(dir, '.looptool-requirements');
  const current = () => existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest;
  if (current()) return { name, dir, python };
  mkdirSync(path.dirname(dir), { recursive: true });
  return withLock(dir, () => {
    if (current()) return { name, dir, python };
    log(`Installing Python environment ${name} into ${dir} (recipes/requirements/${name}.txt)`);
    // A changed requirements file gets a new venv, not an upgrade in place: a pin removed from the file must not stay
    // installed and keep working here while a fresh clone lacks it.
    rmSync(dir, { recursive: true, force: true });
    const steps: [string, string[]][] = [
      ['python3', ['-m', 'venv', dir]],
      [python, ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', '-r', requirements]],
    ];
    for (const [command, args] of steps) {
      const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (result.status !== 0) {
        const tail = `${result.stderr ?? ''}${result.error?.message ?? ''}`
          .split('\n')
          .filter((line) => line.trim() && !line.includes('is ignored: it is neither a file nor a directory'))
          .slice(-8)
          .join('\n');
        throw new Error(`installing Python environment ${name}: ${command} ${args.join(' ')} failed:\n${tail}`);
      }
    }
    writeFileSync(stamp, digest);
    return { name, dir, python };
  });
}
