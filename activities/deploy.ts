import { spawn } from 'node:child_process';
import { ApplicationFailure, CancelledFailure, Context, sleep } from '@temporalio/activity';
import { ErrorType } from '../core/errors.js';
import { DeployCheckpointInput, parseInput } from '../core/inputs.js';
import type { CheckpointManifest } from '../core/training.js';
import { getDeployment, recordDeployment } from '../db/queries/deployments.js';
import type { ActivityDeps } from './deps.js';
import { HttpStatusError, MODEL_SERVER, toApplicationFailure } from './failures.js';

/**
 * The name each iteration's checkpoint is served under: unique per loop and iteration, so a name never stands for two
 * sets of weights (vLLM's prefix cache is keyed by it, and a reused adapter name can serve stale blocks).
 */
export const servedModelName = (loopName: string, iteration: number) => `${loopName}-iter-${iteration}`;

/** The iteration of one of this loop's served names (`<loop>-iter-<n>`), or undefined for any other model. */
export function servedIteration(loopName: string, model: string): number | undefined {
  const prefix = `${loopName}-iter-`;
  if (!model.startsWith(prefix)) return undefined;
  const rest = model.slice(prefix.length);
  return /^[1-9]\d*$/.test(rest) ? Number(rest) : undefined;
}

/** How often a deployment polls a server that is loading or restarting. @unit milliseconds */
const READY_POLL_MS = 500;
/** One request to a model server; a hung one must not outlive the heartbeat timeout. @unit milliseconds */
const REQUEST_TIMEOUT_MS = 30_000;
/** How much of a restart command's output a failure quotes (its end: where the error usually is). @unit characters */
const OUTPUT_TAIL_CHARS = 2_000;

/** vLLM's answer on the LoRA routes when VLLM_ALLOW_RUNTIME_LORA_UPDATING is off: FastAPI's unknown-route 404. */
const isRouteMissing = (status: number, text: string) =>
  status === 404 && /^\s*\{\s*"detail"\s*:\s*"Not Found"/.test(text);

/** The activity was cancelled: the SDK aborts its signal with a CancelledFailure, which fetch and sleep rethrow. */
const isCancellation = (err: unknown) =>
  err instanceof CancelledFailure || (err instanceof Error && err.name === 'AbortError');

/**
 * An entry of `GET /v1/models`. vLLM gives an adapter's `root` as the path it was loaded from and its `parent` as the
 * base model; a base model's `parent` is null.
 */
interface ListedModel {
  id: string;
  root?: string | null;
  parent?: string | null;
}

/**
 * One policy server as deployment talks to it: the OpenAI base URL (`…/v1`) for models and the LoRA routes, its root
 * for `/health`, and the role's API key on every request (vLLM `--api-key` guards every `/v1/*` route; `/health` is
 * open there, but a proxy in front may guard it too).
 */
class PolicyServer {
  readonly base: string;
  readonly root: string;

  constructor(
    baseUrl: string,
    private readonly authHeaders: Record<string, string>,
    private readonly signal: AbortSignal,
  ) {
    this.base = baseUrl.replace(/\/+$/, '');
    this.root = this.base.replace(/\/v1$/, '');
  }

  async request(method: 'GET' | 'POST', url: string, body?: unknown): Promise<{ status: number; text: string }> {
    try {
      const response = await fetch(url, {
        method,
        headers: { ...this.authHeaders, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.any([this.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      return { status: response.status, text: await response.text() };
    } catch (err) {
      if (err instanceof Error && err.name === 'TimeoutError')
        throw ApplicationFailure.create({
          message: `${method} ${url}: no answer within ${REQUEST_TIMEOUT_MS / 1000}s`,
          type: MODEL_SERVER.connection,
        });
      throw err;
    }
  }

  /** `GET /v1/models`; anything but a 200 with a model list throws (classified by {@link toApplicationFailure}). */
  async models(): Promise<ListedModel[]> {
    const { status, text } = await this.request('GET', `${this.base}/models`);
    if (status !== 200) throw new HttpStatusError(status, `GET ${this.base}/models: ${text.slice(0, 200)}`);
    const data = (JSON.parse(text) as { data?: unknown }).data;
    if (!Array.isArray(data) || !data.every((m) => typeof (m as ListedModel | null)?.id === 'string'))
      throw new HttpStatusError(502, `GET ${this.base}/models: not a model list: ${text.slice(0, 200)}`);
    return data as ListedModel[];
  }
}

/** A served name bound to other weights than the checkpoint's: a retry cannot fix it, and serving it would be wrong. */
function nameTaken(model: string, where: string, boundTo: string, checkpoint: CheckpointManifest): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `${model} is already ${where} with ${boundTo}, not ${checkpoint.path}: a served name is never rebound to other ` +
      `weights (unload it by hand if this is really meant)`,
    ErrorType.ModelRequestRejected,
  );
}

/**
 * Makes π_j servable on every policy server the way its checkpoint needs, then records the served name per iteration
 * (db `deployments`). Every request carries the policy role's API key.
 *
 * - LoRA (`checkpoint.kind = 'lora'`): hot-loaded through vLLM's runtime LoRA API under {@link servedModelName}, until
 *   `/v1/models` lists it from the checkpoint's path; then this loop's adapters outside the newest
 *   `deploy.loraRetention` (the new one included) are unloaded, so VRAM does not creep. A name loaded from another
 *   path is refused; a 404 `{"detail":"Not Found"}` means runtime updating is off.
 * - Full weights: `deploy.restartCommand` (argv, no shell; `{checkpoint}`, `{served_model}`, `{base_url}` substituted;
 *   `LOOPTOOL_CHECKPOINT`, `LOOPTOOL_SERVED_MODEL`, `LOOPTOOL_BASE_URL` and, when the worker has one,
 *   `LOOPTOOL_API_KEY` in its environment) runs once per server and must exit 0; then `/health` and `/v1/models` are
 *   polled until the server is healthy and lists the name, within `deploy.readyTimeoutSeconds`.
 *
 * Idempotent: a server that already lists the name from the same checkpoint is left alone (a retried activity after a
 * load or restart that worked neither reloads nor restarts). Servers are done one at a time, so the others keep
 * serving during a restart. Failures are classified like every model-server call (5xx, 429, connection: retry; other
 * 4xx: fail).
 */
export function createDeployActivities(deps: ActivityDeps) {
  return {
    async deployCheckpoint(rawInput: DeployCheckpointInput): Promise<{ model: string }> {
      const input = parseInput(DeployCheckpointInput, rawInput, 'deployCheckpoint');
      const context = Context.current();
      const { checkpoint, deploy, loopName, iteration } = input;
      const model = servedModelName(loopName, iteration);
      const key = { loopName, iteration };
      const recorded = await getDeployment(deps.pool, key);
      if (recorded && recorded.checkpointPath !== checkpoint.path)
        throw nameTaken(model, 'recorded as deployed', recorded.checkpointPath, checkpoint);
      if (checkpoint.kind === 'full' && !deploy.restartCommand)
        throw ApplicationFailure.nonRetryable(
          `${checkpoint.path} holds full weights, which are deployed by restarting the policy server on them: ` +
            `set deploy.restartCommand in the loop config (argv; {checkpoint}, {served_model} and {base_url} are ` +
            `substituted), or train a LoRA adapter (training.weights: lora)`,
          ErrorType.ConfigInvalid,
        );
      const baseUrls = deps.llm.baseUrlsFor('policy', input.policyBaseUrls);
      const deadlineMs = deploy.readyTimeoutSeconds * 1000;
      for (const baseUrl of baseUrls) {
        const server = new PolicyServer(baseUrl, deps.llm.authHeaders('policy'), context.cancellationSignal);
        try {
          if (checkpoint.kind === 'lora') {
            await loadAdapter(server, model, checkpoint, deadlineMs);
            await unloadOutsideRetention(server, loopName, iteration, deploy.loraRetention);
          } else {
            await restartOn(
              server,
              model,
              checkpoint,
              deploy.restartCommand!,
              deps.llm.apiKeyFor('policy'),
              deadlineMs,
            );
          }
        } catch (err) {
          throw toApplicationFailure(err, `deploying ${model} on ${server.base}`, MODEL_SERVER);
        }
        context.heartbeat({ deployed: server.base });
      }
      const row = { servedModel: model, kind: checkpoint.kind, checkpointPath: checkpoint.path, baseUrls };
      if (!(await recordDeployment(deps.pool, key, row))) {
        // Another attempt recorded other weights in between: report what the record says.
        const now = await getDeployment(deps.pool, key);
        throw nameTaken(model, 'recorded as deployed', now?.checkpointPath ?? '(unknown)', checkpoint);
      }
      return { model };
    },
  };
}

/** Polls `probe` until it returns a value or `deadlineMs` passes, heartbeating what it last saw. */
async function pollUntil<T>(
  deadlineMs: number,
  probe: () => Promise<{ value?: T; seen: string }>,
): Promise<{ value?: T; seen: string }> {
  const context = Context.current();
  const start = Date.now();
  for (;;) {
    const result = await probe();
    if (result.value !== undefined || Date.now() - start >= deadlineMs) return result;
    context.heartbeat({ waiting: result.seen });
    await sleep(READY_POLL_MS);
  }
}

async function loadAdapter(
  server: PolicyServer,
  model: string,
  checkpoint: CheckpointManifest,
  deadlineMs: number,
): Promise<void> {
  /** Listed from this checkpoint (true), not listed (undefined), or listed from other weights (a failure). */
  const listedHere = async (): Promise<true | undefined> => {
    const entry = (await server.models()).find((m) => m.id === model);
    if (!entry) return undefined;
    // vLLM lists an adapter's `root` as the path it was loaded from; a server that gives none cannot be checked.
    if (entry.root && entry.root !== checkpoint.path)
      throw nameTaken(model, `loaded on ${server.base}`, entry.root, checkpoint);
    return true;
  };
  if (await listedHere()) return;
  const { status, text } = await server.request('POST', `${server.base}/load_lora_adapter`, {
    lora_name: model,
    lora_path: checkpoint.path,
  });
  if (isRouteMissing(status, text))
    throw ApplicationFailure.nonRetryable(
      `${server.base}/load_lora_adapter answers 404 Not Found: the server does not allow loading LoRA adapters at ` +
        `runtime. Start vLLM with --enable-lora (and --max-loras at least deploy.loraRetention + 1) and the ` +
        `environment variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`,
      ErrorType.ModelRequestRejected,
    );
  // Loaded in between (a concurrent attempt): whether from this checkpoint is what the listing below decides.
  const alreadyLoaded = status === 400 && /already (been )?loaded/i.test(text);
  if (status !== 200 && !alreadyLoaded)
    throw new HttpStatusError(status, `POST ${server.base}/load_lora_adapter: ${text.slice(0, 200)}`);
  const listed = await pollUntil(deadlineMs, async () => {
    const value = await listedHere();
    return { ...(value ? { value } : {}), seen: `${server.base}/models does not list ${model}` };
  });
  if (!listed.value)
    throw new HttpStatusError(503, `loaded ${model}, but ${server.base}/models did not list it within the deadline`);
}

/**
 * Unloads this loop's adapters that fall outside the retention window: the newest `retention` by iteration, the one
 * just deployed always among them. Only `<loop>-iter-<n>` names of this loop are touched (never the base model, never
 * another loop's); one with a later iteration than this can only be a leftover of an earlier run, and goes too.
 */
async function unloadOutsideRetention(
  server: PolicyServer,
  loopName: string,
  iteration: number,
  retention: number,
): Promise<void> {
  const ours = (await server.models())
    // A base model (a full-weight iteration a server was restarted on) is no adapter to unload.
    .filter((m) => m.parent !== null)
    .map((m) => ({ id: m.id, n: servedIteration(loopName, m.id) }))
    .filter((m): m is { id: string; n: number } => m.n !== undefined);
  const kept = new Set(
    ours
      .filter((m) => m.n < iteration)
      .sort((a, b) => b.n - a.n)
      .slice(0, retention - 1)
      .map((m) => m.id),
  );
  kept.add(servedModelName(loopName, iteration));
  for (const adapter of ours) {
    if (kept.has(adapter.id)) continue;
    const { status, text } = await server.request('POST', `${server.base}/unload_lora_adapter`, {
      lora_name: adapter.id,
    });
    // Gone already (an earlier attempt unloaded it): vLLM says 404 "cannot be found" (400 in older versions).
    const alreadyGone =
      (status === 404 || status === 400) && !isRouteMissing(status, text) && /not (be )?found/i.test(text);
    if (status !== 200 && !alreadyGone)
      throw new HttpStatusError(status, `POST ${server.base}/unload_lora_adapter ${adapter.id}: ${text.slice(0, 200)}`);
    Context.current().heartbeat({ unloaded: adapter.id });
  }
}

/** What a server answered, in a few words, for the error that says why it never became ready. */
function summarize(what: string, outcome: PromiseSettledResult<{ status: number; text: string }>): string {
  if (outcome.status === 'fulfilled')
    return `${what} → HTTP ${outcome.value.status} ${outcome.value.text.slice(0, 120)}`;
  const err = outcome.reason as Error & { cause?: { code?: string; message?: string } };
  return `${what} → ${err.cause?.code ?? err.cause?.message ?? err.message}`;
}

async function restartOn(
  server: PolicyServer,
  model: string,
  checkpoint: CheckpointManifest,
  command: readonly string[],
  apiKey: string | undefined,
  deadlineMs: number,
): Promise<void> {
  const listsModel = async (): Promise<boolean> => {
    try {
      return (await server.models()).some((m) => m.id === model);
    } catch (err) {
      // Down or half up is what a restart is for; a refused key or request is not, and no restart fixes it.
      if (err instanceof HttpStatusError && err.status >= 400 && err.status < 500 && err.status !== 404) throw err;
      if (isCancellation(err)) throw err;
      return false;
    }
  };
  if (!(await listsModel())) {
    const values = { checkpoint: checkpoint.path, served_model: model, base_url: server.base };
    await runRestartCommand(
      server.base,
      substitute(command, values),
      {
        LOOPTOOL_CHECKPOINT: values.checkpoint,
        LOOPTOOL_SERVED_MODEL: model,
        LOOPTOOL_BASE_URL: server.base,
        ...(apiKey ? { LOOPTOOL_API_KEY: apiKey } : {}),
      },
      deadlineMs,
    );
  }
  const ready = await pollUntil(deadlineMs, async () => {
    const [health, models] = await Promise.allSettled([
      server.request('GET', `${server.root}/health`),
      server.request('GET', `${server.base}/models`),
    ]);
    for (const outcome of [health, models])
      if (outcome.status === 'rejected' && isCancellation(outcome.reason)) throw outcome.reason;
    if (models.status === 'fulfilled' && (models.value.status === 401 || models.value.status === 403))
      throw new HttpStatusError(models.value.status, `GET ${server.base}/models: ${models.value.text.slice(0, 200)}`);
    const healthy = health.status === 'fulfilled' && health.value.status === 200;
    let listed = false;
    if (models.status === 'fulfilled' && models.value.status === 200) {
      try {
        const data = (JSON.parse(models.value.text) as { data?: ListedModel[] }).data;
        listed = Array.isArray(data) && data.some((m) => m?.id === model);
      } catch {
        listed = false;
      }
    }
    const seen = `${summarize(`GET ${server.root}/health`, health)}; ${summarize(`GET ${server.base}/models`, models)}`;
    return { ...(healthy && listed ? { value: true } : {}), seen };
  });
  if (!ready.value)
    throw ApplicationFailure.create({
      message:
        `${server.base} was restarted on ${checkpoint.path}, but it was not healthy and listing ${model} within ` +
        `${deadlineMs / 1000}s (deploy.readyTimeoutSeconds); last seen: ${ready.seen}`,
      type: ErrorType.ModelServerUnavailable,
    });
}

/** The command with `{checkpoint}`, `{served_model}` and `{base_url}` filled in; any other `{name}` is a config error. */
export function substitute(command: readonly string[], values: Readonly<Record<string, string>>): string[] {
  return command.map((arg, index) =>
    arg.replace(/\{([a-z_]+)\}/g, (whole, name: string) => {
      const value = values[name];
      if (value === undefined)
        throw ApplicationFailure.nonRetryable(
          `deploy.restartCommand[${index}]: unknown placeholder ${whole} (known: ${Object.keys(values)
            .map((k) => `{${k}}`)
            .join(', ')})`,
          ErrorType.ConfigInvalid,
        );
      return value;
    }),
  );
}

/**
 * Runs the restart command and requires exit 0. Its output's tail goes into the failure. It must return once the
 * restart is under way (a detached server, a supervisor call): the wait for readiness follows. Only its exit is waited
 * for, not its output streams, which a server it started in the background may hold open.
 */
function runRestartCommand(
  server: string,
  argv: string[],
  env: Record<string, string>,
  deadlineMs: number,
): Promise<void> {
  const context = Context.current();
  const [file, ...args] = argv as [string, ...string[]];
  return new Promise<void>((resolve, reject) => {
    let output = '';
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const beat = setInterval(() => context.heartbeat({ restarting: argv[0] }), 5_000);
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      finish(
        ApplicationFailure.create({
          message: `${server}: deploy.restartCommand did not exit within ${deadlineMs / 1000}s (deploy.readyTimeoutSeconds); output: ${tail()}`,
          type: ErrorType.ModelServerUnavailable,
        }),
      );
    }, deadlineMs);
    const onAbort = () => {
      child.kill('SIGTERM');
      finish(new CancelledFailure(`${server}: deploy.restartCommand stopped: the activity was cancelled`));
    };
    context.cancellationSignal.addEventListener('abort', onAbort, { once: true });
    const tail = () => (output.trim() ? output.trimEnd() : '(none)');
    let done = false;
    const finish = (err?: unknown) => {
      if (done) return;
      done = true;
      clearInterval(beat);
      clearTimeout(deadline);
      context.cancellationSignal.removeEventListener('abort', onAbort);
      child.stdout.destroy();
      child.stderr.destroy();
      if (err) reject(err);
      else resolve();
    };
    child.once('error', (err: NodeJS.ErrnoException) =>
      finish(
        ApplicationFailure.nonRetryable(
          `deploy.restartCommand: cannot run ${JSON.stringify(file)}: ${err.code ?? err.message}`,
          ErrorType.ConfigInvalid,
        ),
      ),
    );
    child.once('exit', (code, signal) => {
      // The exit can come before the last output chunk is read: give the streams one turn of the event loop.
      setImmediate(() =>
        finish(
          code === 0
            ? undefined
            : ApplicationFailure.create({
                message: `${server}: deploy.restartCommand ${JSON.stringify(argv)} exited with ${signal ?? `code ${code}`}; output: ${tail()}`,
                type: ErrorType.ModelServerUnavailable,
              }),
        ),
      );
    });
  });
}
