import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities, createActivityDeps, type Activities } from '../../activities/index.js';
import { policyChat } from '../../activities/llm/policy-chat.js';
import { toApplicationFailure } from '../../activities/failures.js';
import { ErrorType } from '../../core/errors.js';
import type { DeployCheckpointInput } from '../../core/inputs.js';
import type { CheckpointManifest } from '../../core/training.js';
import type { ModelRole } from '../../core/vocabulary.js';
import { listDeployments } from '../../db/queries/deployments.js';
import { CHECKPOINT_FORMAT, writeCheckpoint } from '../../sim/checkpoint.js';
import { generateSeedData } from '../../sim/seed-data.js';
import { startSimServer, type SimServer, type SimServerOptions } from '../../sim/server.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { quietEnvironment } from '../helpers/stages.js';

/**
 * The deploy activity against real servers over HTTP and a real PostgreSQL, run in the SDK's activity Context
 * (MockActivityEnvironment): LoRA hot-loading on the simulated vLLM server (with and without an API key, with runtime
 * LoRA updating off), and the restart path with a real restart command (test/fixtures/restart-server.js) that starts a
 * detached model server on the new checkpoint. What happened is read from the servers' own records of requests.
 */

const RESTART_SERVER = fileURLToPath(new URL('../fixtures/restart-server.js', import.meta.url));
const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-deploy-'));
let db: TestDatabase;
const servers: SimServer[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
  await db?.drop();
  rmSync(scratch, { recursive: true, force: true });
});

async function simServer(options: SimServerOptions = {}): Promise<SimServer> {
  const server = await startSimServer({ port: 0, bfclDir: false, ...options });
  servers.push(server);
  return server;
}

async function addLoop(name: string): Promise<void> {
  await db.pool.query(
    `INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ($1::text, '{}', 'test', $2::text)`,
    [name, `loop/${name}`],
  );
}

function activities(apiKeys: Partial<Record<ModelRole, string>> = {}): Activities {
  return createActivities(
    createActivityDeps({ pool: db.pool, artifactsDir: path.join(scratch, 'artifacts'), apiKeys }),
  );
}

/** A sim LoRA checkpoint (what the simulated trainer writes) and its manifest. */
async function loraCheckpoint(name: string): Promise<CheckpointManifest> {
  const dir = path.join(scratch, 'checkpoints', name);
  await writeCheckpoint(dir, {
    format: CHECKPOINT_FORMAT,
    id: `ckpt-${name}`,
    base: null,
    lineage: [],
    exposure: { good: {}, bad: {} },
    training: {
      job_key: name,
      dataset_path: '/dev/null',
      dataset_sha256: '0'.repeat(64),
      epochs: 1,
      samples: 0,
      correct_labels: 0,
      wrong_labels: 0,
      unknown_labels: 0,
    },
  });
  return { kind: 'lora', path: dir, baseModel: 'sim-student', steps: 1, metrics: {} };
}

const fullCheckpoint = (name: string): CheckpointManifest => ({
  kind: 'full',
  path: path.join(scratch, 'checkpoints', name, 'hf'),
  baseModel: 'base-model',
  steps: 2,
  metrics: { reward: 0.5 },
});

const deployInput = (
  loopName: string,
  iteration: number,
  checkpoint: CheckpointManifest,
  baseUrls: string[],
  deploy: DeployCheckpointInput['deploy'] = {},
): DeployCheckpointInput => ({ loopName, iteration, checkpoint, policyBaseUrls: baseUrls, deploy });

const deploy = (acts: Activities, input: DeployCheckpointInput): Promise<{ model: string }> =>
  quietEnvironment().run(acts.deployCheckpoint, input);

/** The activity's failure (the test fails if it succeeds). */
async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const outcome = await run.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(ApplicationFailure);
  return outcome as ApplicationFailure;
}

const adapterNames = (server: SimServer) => [...server.stats().adapters].sort();
const routeCount = (server: SimServer, route: string) => server.stats().routes[route]?.requests ?? 0;

describe('API keys on every route', () => {
  test('a key-protected server serves deploy, a probe-style chat and the model list with the role key, and records it on every route', async () => {
    const policyServer = await simServer({ apiKey: 'policy-secret' });
    const judgeServer = await simServer({ apiKey: 'judge-secret' });
    await addLoop('keyed');
    const acts = activities({ policy: 'policy-secret', judge: 'judge-secret' });
    const deps = createActivityDeps({
      pool: db.pool,
      artifactsDir: scratch,
      apiKeys: { policy: 'policy-secret', judge: 'judge-secret' },
    });

    const checkpoint = await loraCheckpoint('keyed-1');
    expect(await deploy(acts, deployInput('keyed', 1, checkpoint, [policyServer.baseURL]))).toEqual({
      model: 'keyed-iter-1',
    });
    const sample = generateSeedData({ count: 1, seed: 3 })[0]!.sample;
    const reply = await deps.llm
      .pool('policy', { baseUrls: [policyServer.baseURL], maxConcurrency: 1 })
      .withEndpoint((endpoint) =>
        policyChat(endpoint, {
          model: 'keyed-iter-1',
          sample,
          maxTokens: 256,
          logprobs: true,
          signal: new AbortController().signal,
        }),
      );
    expect(reply.kind).toBe('reply');
    const listed = await deps.llm
      .pool('judge', { baseUrls: [judgeServer.baseURL], maxConcurrency: 1 })
      .withEndpoint((endpoint) => endpoint.client.models.list());
    expect(listed.data.map((m) => m.id)).toContain(judgeServer.judgeModel);

    const policyRoutes = policyServer.stats().routes;
    expect(Object.keys(policyRoutes).sort()).toEqual([
      'GET /v1/models',
      'POST /v1/chat/completions',
      'POST /v1/load_lora_adapter',
    ]);
    for (const [route, counts] of Object.entries(policyRoutes))
      expect(counts, route).toEqual({ requests: counts.requests, withKey: counts.requests, rejected: 0 });
    expect(policyRoutes['POST /v1/chat/completions']!.requests).toBe(1);
    // Each role's servers get that role's key: the judge's own, never the policy's.
    expect(judgeServer.stats().routes).toEqual({ 'GET /v1/models': { requests: 1, withKey: 1, rejected: 0 } });
  });

  test('without the key every /v1 route answers 401 and the failure says which key to set; /health stays open as in vLLM', async () => {
    const server = await simServer({ apiKey: 'policy-secret' });
    await addLoop('keyless');
    const failure = await failureOf(
      deploy(activities(), deployInput('keyless', 1, await loraCheckpoint('keyless-1'), [server.baseURL])),
    );
    expect(failure).toMatchObject({ type: ErrorType.ModelRequestRejected, nonRetryable: true });
    expect(failure.message).toMatch(/HTTP 401: .*Unauthorized.*LOOPTOOL_<ROLE>_API_KEY/);

    const deps = createActivityDeps({ pool: db.pool, artifactsDir: scratch });
    const chat = await deps.llm
      .pool('policy', { baseUrls: [server.baseURL], maxConcurrency: 1 })
      .withEndpoint((endpoint) =>
        endpoint.client.chat.completions.create({
          model: server.policyModel,
          messages: [{ role: 'user', content: 'hi' }],
        }),
      )
      .catch((err: unknown) => toApplicationFailure(err, 'probe'));
    expect(chat).toMatchObject({ type: ErrorType.ModelRequestRejected, nonRetryable: true });
    expect((chat as Error).message).toMatch(/HTTP 401: 401 "Unauthorized"/);

    // A wrong key is no key; the scheme is case-insensitive, as vLLM's middleware has it.
    const wrong = await fetch(`${server.baseURL}/models`, { headers: { authorization: 'Bearer nope' } });
    expect([wrong.status, await wrong.json()]).toEqual([401, { error: 'Unauthorized' }]);
    expect(
      (await fetch(`${server.baseURL}/models`, { headers: { authorization: 'bearer policy-secret' } })).status,
    ).toBe(200);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);

    const routes = server.stats().routes;
    expect(routes['GET /v1/models']).toEqual({ requests: 3, withKey: 1, rejected: 2 });
    expect(routes['POST /v1/chat/completions']).toEqual({ requests: 1, withKey: 0, rejected: 1 });
    expect(routes['GET /health']).toEqual({ requests: 1, withKey: 0, rejected: 0 });
    expect(server.stats().adapters).toEqual([]);
  });
});

describe('LoRA deployment', () => {
  test('a new adapter name per iteration; the newest loraRetention of this loop stay loaded, and a retry reloads nothing', async () => {
    const server = await simServer({ adapters: {} });
    await addLoop('lora');
    const acts = activities();
    const bases = [server.baseURL];
    // Adapters that are not this loop's: another loop's with a similar name, and one loaded by hand.
    const foreign = await loraCheckpoint('foreign');
    for (const name of ['lora-iter-1-iter-1', 'hand-loaded'])
      await fetch(`${server.baseURL}/load_lora_adapter`, {
        method: 'POST',
        body: JSON.stringify({ lora_name: name, lora_path: foreign.path }),
      });

    const checkpoints = [
      await loraCheckpoint('lora-1'),
      await loraCheckpoint('lora-2'),
      await loraCheckpoint('lora-3'),
    ];
    for (const [index, checkpoint] of checkpoints.entries()) {
      const { model } = await deploy(acts, deployInput('lora', index + 1, checkpoint, bases, { loraRetention: 2 }));
      expect(model).toBe(`lora-iter-${index + 1}`);
    }
    expect(adapterNames(server)).toEqual(['hand-loaded', 'lora-iter-1-iter-1', 'lora-iter-2', 'lora-iter-3']);
    const models = (await (await fetch(`${server.baseURL}/models`)).json()) as { data: { id: string; root: string }[] };
    expect(models.data.find((m) => m.id === 'lora-iter-3')?.root).toBe(checkpoints[2]!.path);

    // A retried deploy of iteration 3 (its first attempt loaded the adapter) loads and unloads nothing.
    const loads = routeCount(server, 'POST /v1/load_lora_adapter');
    const unloads = routeCount(server, 'POST /v1/unload_lora_adapter');
    await deploy(acts, deployInput('lora', 3, checkpoints[2]!, bases, { loraRetention: 2 }));
    expect(routeCount(server, 'POST /v1/load_lora_adapter')).toBe(loads);
    expect(routeCount(server, 'POST /v1/unload_lora_adapter')).toBe(unloads);

    // Retention 1 keeps only the new one.
    await deploy(acts, deployInput('lora', 4, await loraCheckpoint('lora-4'), bases, { loraRetention: 1 }));
    expect(adapterNames(server)).toEqual(['hand-loaded', 'lora-iter-1-iter-1', 'lora-iter-4']);
  });

  test('a name loaded from other weights, or recorded with other weights, is refused, not taken as deployed', async () => {
    const server = await simServer();
    await addLoop('reuse');
    const acts = activities();
    const stale = await loraCheckpoint('reuse-stale');
    await fetch(`${server.baseURL}/load_lora_adapter`, {
      method: 'POST',
      body: JSON.stringify({ lora_name: 'reuse-iter-1', lora_path: stale.path }),
    });
    const fresh = await loraCheckpoint('reuse-fresh');
    const onServer = await failureOf(deploy(acts, deployInput('reuse', 1, fresh, [server.baseURL])));
    expect(onServer).toMatchObject({ type: ErrorType.ModelRequestRejected, nonRetryable: true });
    expect(onServer.message).toContain(`reuse-iter-1 is already loaded on ${server.baseURL} with ${stale.path}`);
    expect(onServer.message).toContain(`not ${fresh.path}`);

    await deploy(acts, deployInput('reuse', 2, fresh, [server.baseURL]));
    const recorded = await failureOf(deploy(acts, deployInput('reuse', 2, stale, [server.baseURL])));
    expect(recorded).toMatchObject({ type: ErrorType.ModelRequestRejected, nonRetryable: true });
    expect(recorded.message).toContain(`reuse-iter-2 is already recorded as deployed with ${fresh.path}`);
    expect(routeCount(server, 'POST /v1/load_lora_adapter')).toBe(2);
  });

  test('a server without runtime LoRA updating answers 404: a non-retryable failure that says how to start vLLM', async () => {
    const server = await simServer({ runtimeLoraUpdating: false });
    await addLoop('nolora');
    const failure = await failureOf(
      deploy(activities(), deployInput('nolora', 1, await loraCheckpoint('nolora-1'), [server.baseURL])),
    );
    expect(failure).toMatchObject({ type: ErrorType.ModelRequestRejected, nonRetryable: true });
    expect(failure.message).toMatch(/--enable-lora/);
    expect(failure.message).toMatch(/VLLM_ALLOW_RUNTIME_LORA_UPDATING=True/);
    const raw = await fetch(`${server.baseURL}/load_lora_adapter`, { method: 'POST', body: '{}' });
    expect([raw.status, await raw.json()]).toEqual([404, { detail: 'Not Found' }]);
  });
});

describe('full-weight deployment by restart', () => {
  /** A model server slot: its port, and the state folder where the fixture logs restarts and requests. */
  async function slot(name: string) {
    const port = await freePort();
    const state = path.join(scratch, `server-${name}`);
    mkdirSync(state, { recursive: true });
    const lines = (file: string) =>
      existsSync(path.join(state, file)) ? readFileSync(path.join(state, file), 'utf8').trim().split('\n') : [];
    return {
      baseUrl: `http://127.0.0.1:${port}/v1`,
      command: [process.execPath, RESTART_SERVER, 'restart', state, String(port), '{checkpoint}', '{served_model}'],
      restarts: () => lines('restarts.log'),
      requests: () => lines('requests.log'),
      stop: () => {
        const pidFile = path.join(state, 'server.pid');
        if (!existsSync(pidFile)) return;
        try {
          process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM');
        } catch {
          // Already gone.
        }
      },
    };
  }
  const slots: { stop(): void }[] = [];
  afterAll(() => slots.forEach((s) => s.stop()));

  test('runs the restart command, waits for /health and /v1/models with the key, and a retry does not restart again', async () => {
    const server = await slot('full');
    slots.push(server);
    await addLoop('full');
    const acts = activities({ policy: 'policy-secret' });
    const first = fullCheckpoint('full-1');
    const input = deployInput('full', 1, first, [server.baseUrl], {
      restartCommand: server.command,
      readyTimeoutSeconds: 60,
    });
    expect(await deploy(acts, input)).toEqual({ model: 'full-iter-1' });
    expect(server.restarts()).toEqual([`full-iter-1 ${first.path}`]);
    // It waited through the server's loading phase (two 503s) until /health said 200 and the name was listed.
    expect(server.requests().filter((r) => r.startsWith('GET /health')).length).toBeGreaterThanOrEqual(3);

    // A retried activity after a restart that worked: the server lists the name, so nothing restarts.
    expect(await deploy(acts, input)).toEqual({ model: 'full-iter-1' });
    expect(server.restarts()).toHaveLength(1);

    const second = fullCheckpoint('full-2');
    await deploy(acts, { ...input, iteration: 2, checkpoint: second });
    expect(server.restarts()).toEqual([`full-iter-1 ${first.path}`, `full-iter-2 ${second.path}`]);
    const models = (await (
      await fetch(`${server.baseUrl}/models`, { headers: { authorization: 'Bearer policy-secret' } })
    ).json()) as { data: { id: string; root: string }[] };
    expect(models.data).toEqual([expect.objectContaining({ id: 'full-iter-2', root: second.path })]);

    // Every request deploy made (health included) carried the policy key; the server was started with it.
    const made = server.requests();
    expect(new Set(made.map((r) => r.split(' ').slice(0, 2).join(' ')))).toEqual(
      new Set(['GET /health', 'GET /v1/models']),
    );
    expect(made.filter((r) => !r.endsWith(' key'))).toEqual([]);
  });

  test('the served model is recorded per iteration, with its checkpoint and servers', async () => {
    const rows = await listDeployments(db.pool, 'full');
    expect(rows.map(({ deployedAt: _at, ...row }) => row)).toEqual([
      {
        iteration: 1,
        servedModel: 'full-iter-1',
        kind: 'full',
        checkpointPath: fullCheckpoint('full-1').path,
        baseUrls: [expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)],
      },
      {
        iteration: 2,
        servedModel: 'full-iter-2',
        kind: 'full',
        checkpointPath: fullCheckpoint('full-2').path,
        baseUrls: rows[0]!.baseUrls,
      },
    ]);
    expect((await listDeployments(db.pool, 'lora')).map((r) => [r.iteration, r.servedModel, r.kind])).toEqual([
      [1, 'lora-iter-1', 'lora'],
      [2, 'lora-iter-2', 'lora'],
      [3, 'lora-iter-3', 'lora'],
      [4, 'lora-iter-4', 'lora'],
    ]);
  });

  test('a failing restart command fails the attempt with its exit status and output', async () => {
    const server = await slot('failing');
    await addLoop('failing');
    const failure = await failureOf(
      deploy(
        activities(),
        deployInput('failing', 1, fullCheckpoint('failing-1'), [server.baseUrl], {
          restartCommand: [
            process.execPath,
            '-e',
            "console.log('loading', process.argv[1]); console.error('CUDA out of memory'); process.exit(3)",
            '{checkpoint}',
          ],
        }),
      ),
    );
    expect(failure).toMatchObject({ type: ErrorType.ModelServerUnavailable, nonRetryable: false });
    expect(failure.message).toContain('exited with code 3');
    expect(failure.message).toContain(`loading ${fullCheckpoint('failing-1').path}`);
    expect(failure.message).toContain('CUDA out of memory');
    expect(await listDeployments(db.pool, 'failing')).toEqual([]);
  });

  test('a server that never gets ready is a retryable failure naming what was last seen', async () => {
    const server = await slot('silent');
    await addLoop('silent');
    const failure = await failureOf(
      deploy(
        activities(),
        deployInput('silent', 1, fullCheckpoint('silent-1'), [server.baseUrl], {
          restartCommand: [process.execPath, '-e', 'process.exit(0)'],
          readyTimeoutSeconds: 1,
        }),
      ),
    );
    expect(failure).toMatchObject({ type: ErrorType.ModelServerUnavailable, nonRetryable: false });
    expect(failure.message).toMatch(/not healthy and listing silent-iter-1 within 1s/);
    expect(failure.message).toMatch(/last seen: GET http:\/\/127\.0\.0\.1:\d+\/health → ECONNREFUSED/);
  });

  test('full weights without deploy.restartCommand, or with an unknown placeholder, are configuration errors', async () => {
    await addLoop('unset');
    const acts = activities();
    const unset = await failureOf(deploy(acts, deployInput('unset', 1, fullCheckpoint('unset-1'), ['http://x:1/v1'])));
    expect(unset).toMatchObject({ type: ErrorType.ConfigInvalid, nonRetryable: true });
    expect(unset.message).toMatch(/full weights.*set deploy\.restartCommand/);

    const typo = await failureOf(
      deploy(
        acts,
        deployInput('unset', 1, fullCheckpoint('unset-1'), ['http://127.0.0.1:9/v1'], {
          restartCommand: ['serve', '--model', '{checkpiont}'],
        }),
      ),
    );
    expect(typo).toMatchObject({ type: ErrorType.ConfigInvalid, nonRetryable: true });
    expect(typo.message).toMatch(/restartCommand\[2\]: unknown placeholder \{checkpiont\}/);
  });
});
