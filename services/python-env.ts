import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
 * Options a requirements file asks pip for on a `# looptool-pip: …` line. Only `--no-deps` is allowed: a requirements
 * file cannot say it itself, and a package whose declared dependencies are far more than what the project imports
 * (bfcl-eval: every vendor SDK and torch) is installed with exactly the pins the file lists instead.
 */
function pipOptions(requirements: string): string[] {
  const options: string[] = [];
  for (const [index, line] of readFileSync(requirements, 'utf8').split('\n').entries()) {
    const match = /^#\s*looptool-pip:(.*)$/.exec(line.trim());
    if (!match) continue;
    for (const option of (match[1] ?? '').trim().split(/\s+/).filter(Boolean)) {
      if (option !== '--no-deps')
        throw new Error(
          `${requirements}:${index + 1}: looptool-pip option ${option} is not supported (only --no-deps)`,
        );
      options.push(option);
    }
  }
  return options;
}

/** The commands that (re)create a venv from its requirements file. */
function installSteps(dir: string, python: string, requirements: string): [string, string[]][] {
  return [
    ['python3', ['-m', 'venv', dir]],
    [
      python,
      ['-m', 'pip', 'install', '--disable-pip-version-check', '-q', ...pipOptions(requirements), '-r', requirements],
    ],
  ];
}

function installFailure(name: string, command: string, args: string[], output: string): Error {
  const tail = output
    .split('\n')
    .filter((line) => line.trim() && !line.includes('is ignored: it is neither a file nor a directory'))
    .slice(-8)
    .join('\n');
  return new Error(`installing Python environment ${name}: ${command} ${args.join(' ')} failed:\n${tail}`);
}

/**
 * Where an environment lives and whether it is current: its folder, interpreter, requirements file, the file's digest,
 * and the stamp that records which digest was installed.
 */
function envLayout(name: string, toolsDir: string | undefined) {
  const dir = path.join(toolsDir ?? TOOLS_DIR, `py-${name}`);
  const python = path.join(dir, 'bin', 'python');
  const requirements = requirementsFile(name);
  const digest = createHash('sha256').update(readFileSync(requirements)).digest('hex');
  const stamp = path.join(dir, '.looptool-requirements');
  const current = () => existsSync(python) && existsSync(stamp) && readFileSync(stamp, 'utf8') === digest;
  return { dir, python, requirements, digest, stamp, current };
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
  const { dir, python, requirements, digest, stamp, current } = envLayout(name, options.toolsDir);
  if (current()) return { name, dir, python };
  mkdirSync(path.dirname(dir), { recursive: true });
  return withLock(dir, () => {
    if (current()) return { name, dir, python };
    log(`Installing Python environment ${name} into ${dir} (recipes/requirements/${name}.txt)`);
    // A changed requirements file gets a new venv, not an upgrade in place: a pin removed from the file must not stay
    // installed and keep working here while a fresh clone lacks it.
    rmSync(dir, { recursive: true, force: true });
    for (const [command, args] of installSteps(dir, python, requirements)) {
      const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      if (result.status !== 0)
        throw installFailure(name, command, args, `${result.stderr ?? ''}${result.error?.message ?? ''}`);
    }
    writeFileSync(stamp, digest);
    return { name, dir, python };
  });
}

/**
 * {@link ensurePythonEnv} without blocking the event loop, for activities that must keep heartbeating while a first
 * install runs (about 20 s to minutes). Same folder, stamp and lock, so it and the synchronous one install once.
 */
export async function ensurePythonEnvAsync(
  name: string,
  options: { log?: (line: string) => void; toolsDir?: string } = {},
): Promise<PythonEnv> {
  const log = options.log ?? (() => {});
  const { dir, python, requirements, digest, stamp, current } = envLayout(name, options.toolsDir);
  if (current()) return { name, dir, python };
  mkdirSync(path.dirname(dir), { recursive: true });
  const lock = `${dir}.lock`;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > LOCK_STALE_MS) rmSync(lock, { force: true });
      await sleep(1_000);
    }
  }
  try {
    if (current()) return { name, dir, python };
    log(`Installing Python environment ${name} into ${dir} (recipes/requirements/${name}.txt)`);
    rmSync(dir, { recursive: true, force: true });
    for (const [command, args] of installSteps(dir, python, requirements)) {
      const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
        const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        let output = '';
        child.stderr.on('data', (chunk: Buffer) => {
          output = (output + chunk.toString('utf8')).slice(-20_000);
        });
        child.on('error', (err) => resolve({ code: -1, output: `${output}${err.message}` }));
        child.on('close', (code) => resolve({ code, output }));
      });
      if (code !== 0) throw installFailure(name, command, args, output);
    }
    writeFileSync(stamp, digest);
    return { name, dir, python };
  } finally {
    rmSync(lock, { force: true });
  }
}
