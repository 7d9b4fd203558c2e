import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { LoopClient } from '../../client/loop-client.js';
import { LoopConfig } from '../../core/config.js';
import { taskQueues, workflowIds } from '../../core/constants.js';
import { contentHash } from '../../core/hash.js';
import { statusQuery } from '../../core/messages.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { projectPath } from '../../services/paths.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { startSimServer, type SimServer } from '../../sim/server.js';
import { LOOPTOOL_BIN } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { quietTemporalLogs } from '../helpers/temporal.js';

/**
 * No secret the worker holds ends up where people and tools read: Temporal histories (every run of the loop and of its
 * stage children), memos, search attributes, query answers and heartbeat details, the worker's own output, the app's
 * database, the files it writes, or what it submits to a training engine.
 *
 * Every kind of credential a loop's worker uses is planted as a distinct random value, and each is really used: the
 * model servers (the simulated vLLM server with `apiKey`, one per role) answer 401 without their key, a Jobs API that
 * stands in for Ray's dashboard answers 401 without its token, and the worker's database URL names a role with a
 * password. Two loops run at once, each with its own worker process:
 *
 * - `secrets-roles`: each role's own key (LOOPTOOL_POLICY_/JUDGE_/GENERATOR_API_KEY) on its own server, the shared
 *   LOOPTOOL_LLM_API_KEY set too (overridden, so it must not be sent anywhere either); sim trainer, evaluation on.
 * - `secrets-fallback`: only LOOPTOOL_LLM_API_KEY, for every role, and training on the Ray backend (RAY_AUTH_TOKEN),
 *   whose jobs run `looptool sim train {spec}` as a recipe does on a cluster.
 *
 * The suite's PostgreSQL trusts local connections (initdb --auth=trust, 127.0.0.1 only), so the server never asks for
 * the URL's password: it is planted to catch the worker writing its DATABASE_URL anywhere, and its use is shown by the
 * role's sessions, not by a password check. A test run against a DATABASE_URL of its own is the same.
 */

const hex = () => randomBytes(16).toString('hex');
/** Hex only, so a value is the same text whether it is URL-encoded, JSON-escaped or shell-quoted. */
const SECRETS = {
  LOOPTOOL_POLICY_API_KEY: `policy${hex()}`,
  LOOPTOOL_JUDGE_API_KEY: `judge${hex()}`,
  LOOPTOOL_GENERATOR_API_KEY: `generator${hex()}`,
  LOOPTOOL_LLM_API_KEY: `llm${hex()}`,
  RAY_AUTH_TOKEN: `ray${hex()}`,
  DATABASE_PASSWORD: `pgpw${hex()}`,
} as const;
type SecretName = keyof typeof SECRETS;

/** Where a secret was found: the place and the secret's name (never its value, which is random anyway). */
interface Finding {
  where: string;
  secret: SecretName;
}

function findSecrets(where: string, text: string | Buffer): Finding[] {
  const haystack = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  return (Object.keys(SECRETS) as SecretName[])
    .filter((name) => haystack.includes(Buffer.from(SECRETS[name], 'utf8')))
    .map((secret) => ({ where, secret }));
}

/**
 * Every string and byte field of a decoded Temporal object (a history, a description) as text: payload data are bytes
 * holding JSON, which `JSON.stringify` would print as numbers (or as Buffer's `{type, data}`), hiding any secret in
 * them. Keys are included too (memo and header keys are data).
 */
function textOf(value: unknown, out: string[] = [], seen = new Set<object>()): string[] {
  if (typeof value === 'string') out.push(value);
  else if (value instanceof Uint8Array) out.push(Buffer.from(value).toString('utf8'));
  else if (value && typeof value === 'object' && !seen.has(value)) {
    seen.add(value);
    if (value instanceof Map) for (const [k, v] of value) textOf([k, v], out, seen);
    else
      for (const [k, v] of Object.entries(value)) {
        out.push(k);
        textOf(v, out, seen);
      }
  }
  return out;
}

/**
 * A stand-in for Ray's dashboard Jobs API with token authentication (the routes RayTrainingBackend calls): each job's
 * entrypoint runs with `sh -c`, as Ray runs it, in an environment of only PATH, HOME and the submission's
 * `runtime_env.env_vars`, so it sees nothing of the worker's environment unless the worker put it into the submission.
 * The real API is exercised against a real head in test/e2e/ray-backend.test.ts.
 */
interface FakeRay {
  address: string;
  authorized: number;
  rejected: number;
  /** Every request body it received, as sent. */
  bodies: string[];
  close(): Promise<void>;
}

async function startFakeRay(token: string): Promise<FakeRay> {
  interface Job {
    info: Record<string, unknown>;
    logs: string;
    child: ChildProcess;
  }
  const jobs = new Map<string, Job>();
  const state = { authorized: 0, rejected: 0, bodies: [] as string[] };
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      if (raw) state.bodies.push(raw);
      if (req.headers.authorization !== `Bearer ${token}`) {
        state.rejected++;
        send(res, 401, { error: 'Unauthorized' });
        return;
      }
      state.authorized++;
      const parts = (req.url ?? '').split('?')[0]!.split('/').filter(Boolean); // api, jobs, <id>, <action>
      const job = parts[2] ? jobs.get(decodeURIComponent(parts[2])) : undefined;
      if (req.method === 'POST' && parts.length === 2) {
        const body = JSON.parse(raw) as {
          entrypoint: string;
          submission_id: string;
          runtime_env?: { env_vars?: Record<string, string> };
          metadata?: Record<string, string>;
        };
        if (jobs.has(body.submission_id)) {
          send(res, 500, { error: `Job with submission_id ${body.submission_id} already exists.` });
          return;
        }
        const child = spawn('sh', ['-c', body.entrypoint], {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, ...body.runtime_env?.env_vars },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        const entry: Job = {
          info: { submission_id: body.submission_id, status: 'RUNNING', metadata: body.metadata ?? {} },
          logs: '',
          child,
        };
        child.stdout!.on('data', (chunk: Buffer) => (entry.logs += chunk.toString('utf8')));
        child.stderr!.on('data', (chunk: Buffer) => (entry.logs += chunk.toString('utf8')));
        child.on('exit', (code) => {
          if (entry.info.status !== 'RUNNING') return;
          entry.info.status = code === 0 ? 'SUCCEEDED' : 'FAILED';
          entry.info.driver_exit_code = code;
        });
        jobs.set(body.submission_id, entry);
        send(res, 200, { submission_id: body.submission_id, job_id: body.submission_id });
      } else if (!job) {
        send(res, 404, { error: 'Job not found' });
      } else if (req.method === 'GET' && parts.length === 3) {
        send(res, 200, job.info);
      } else if (req.method === 'GET' && parts[3] === 'logs') {
        send(res, 200, { logs: job.logs });
      } else if (req.method === 'POST' && parts[3] === 'stop') {
        job.info.status = 'STOPPED';
        job.child.kill('SIGTERM');
        send(res, 200, { stopped: true });
      } else send(res, 404, { error: 'Not found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get authorized() {
      return state.authorized;
    },
    get rejected() {
      return state.rejected;
    },
    bodies: state.bodies,
    close: async () => {
      for (const job of jobs.values()) if (job.child.exitCode === null) job.child.kill('SIGKILL');
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A started worker process and everything it printed. */
interface WorkerProcess {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function startWorkerProcess(env: NodeJS.ProcessEnv): WorkerProcess {
  const child = spawn(process.execPath, [LOOPTOOL_BIN, 'worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      // SIGTERM: the graceful path, so whatever the worker prints on shutdown is in the scanned output too.
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

const ROLES_LOOP = 'secrets-roles';
const FALLBACK_LOOP = 'secrets-fallback';
const LOOPS = [ROLES_LOOP, FALLBACK_LOOP];
const ITERATIONS = 2;
const SAMPLES = 160;

describe('secrets the worker holds stay out of everything it writes', () => {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-secrets-'));
  const role = `looptool_secrets_${randomBytes(4).toString('hex')}`;
  const servers: Record<'policy' | 'judge' | 'generator' | 'fallback', SimServer> = {} as never;
  const workers: Record<string, WorkerProcess> = {};
  /** Texts captured while the loops ran: heartbeat details and query answers, which no history keeps. */
  const whileRunning: { where: string; text: string }[] = [];
  let db: TestDatabase;
  let ray: FakeRay;
  let loops: LoopClient & { close(): Promise<void> };
  let client: Client;
  let roleSessionsSeen = 0;

  beforeAll(async () => {
    quietTemporalLogs();
    db = await createTestDatabase();
    // A login role with a password for the worker's URL (superuser: it reads and writes the tables the suite's
    // superuser created). Cluster-wide, so dropped in afterAll.
    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    try {
      await admin.query(
        `CREATE ROLE ${pg.escapeIdentifier(role)} LOGIN SUPERUSER PASSWORD ${pg.escapeLiteral(SECRETS.DATABASE_PASSWORD)}`,
      );
    } finally {
      await admin.end();
    }
    const workerDbUrl = new URL(db.url);
    workerDbUrl.username = role;
    workerDbUrl.password = SECRETS.DATABASE_PASSWORD;

    [servers.policy, servers.judge, servers.generator, servers.fallback] = await Promise.all([
      startSimServer({ port: 0, seed: 7, apiKey: SECRETS.LOOPTOOL_POLICY_API_KEY, trainer: { jobSeconds: 0.3 } }),
      startSimServer({ port: 0, seed: 7, apiKey: SECRETS.LOOPTOOL_JUDGE_API_KEY, bfclDir: false }),
      startSimServer({ port: 0, seed: 7, apiKey: SECRETS.LOOPTOOL_GENERATOR_API_KEY, bfclDir: false }),
      startSimServer({ port: 0, seed: 7, apiKey: SECRETS.LOOPTOOL_LLM_API_KEY }),
    ]);
    ray = await startFakeRay(SECRETS.RAY_AUTH_TOKEN);

    const seedFile = path.join(scratch, 'seed.jsonl');
    await writeSeedData(seedFile, { count: SAMPLES, seed: 7 });
    const staged = await stageFile({
      pool: db.pool,
      file: seedFile,
      format: 'openai',
      purpose: 'import',
      target: 'seed',
    });
    await versionFromImport(db.pool, { dataset: 'seed', batchId: staged.batchId });
    // A small held-out set (12 BFCL questions), so the evaluation path sends the policy key too.
    const evalDir = path.join(scratch, 'bfcl');
    mkdirSync(path.join(evalDir, 'possible_answer'), { recursive: true });
    const firstLines = (file: string) => readFileSync(projectPath(file), 'utf8').split('\n').slice(0, 12).join('\n');
    const evalFile = {
      questions: path.join(evalDir, 'BFCL_v4_parallel.json'),
      answers: path.join(evalDir, 'possible_answer', 'BFCL_v4_parallel.json'),
    };
    writeFileSync(evalFile.questions, `${firstLines('data/bfcl/BFCL_v4_parallel.json')}\n`);
    writeFileSync(evalFile.answers, `${firstLines('data/bfcl/possible_answer/BFCL_v4_parallel.json')}\n`);

    loops = await LoopClient.connect(inject('temporalAddress'));
    client = loops.client;
    const roleModel = (server: SimServer, model: string) => ({ baseUrls: [server.baseURL], model, maxConcurrency: 8 });
    const common = {
      seed: 7,
      data: { seedDataset: 'seed', initialSize: 100 },
      iterations: ITERATIONS,
      probe: { batchSize: 40 },
      judge: { votes: 3, batchSize: 40 },
      expand: { k: 2, batchSize: 20 },
      timeouts: { batchHeartbeatSeconds: 10, trainHeartbeatSeconds: 10 },
      concurrency: { batches: 2 },
    };
    const configs: Record<string, LoopConfig> = {
      [ROLES_LOOP]: LoopConfig.parse({
        ...common,
        name: ROLES_LOOP,
        models: {
          policy: roleModel(servers.policy, servers.policy.policyModel),
          judge: roleModel(servers.judge, servers.judge.judgeModel),
          generator: roleModel(servers.generator, servers.generator.generatorModel),
        },
        training: { backend: 'sim', url: servers.policy.url },
        evaluation: { sets: [{ name: 'bfcl-slice', files: [evalFile] }] },
      }),
      [FALLBACK_LOOP]: LoopConfig.parse({
        ...common,
        name: FALLBACK_LOOP,
        models: {
          policy: roleModel(servers.fallback, servers.fallback.policyModel),
          judge: roleModel(servers.fallback, servers.fallback.judgeModel),
          generator: roleModel(servers.fallback, servers.fallback.generatorModel),
        },
        training: {
          backend: 'ray',
          address: ray.address,
          command: [process.execPath, LOOPTOOL_BIN, 'sim', 'train', '{spec}', '--seconds-per-job', '0.3'],
          workDir: path.join(scratch, 'ray-work'),
        },
      }),
    };
    // The test process's own environment, without anything the suite may hold for itself, plus the loop's settings.
    const base: NodeJS.ProcessEnv = {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      DATABASE_URL: workerDbUrl.toString(),
      LOOPTOOL_SHUTDOWN_GRACE_SECONDS: '1',
      LOOPTOOL_MIGRATE_ON_START: 'false',
    };
    const envs: Record<string, NodeJS.ProcessEnv> = {
      [ROLES_LOOP]: {
        ...base,
        LOOPTOOL_POLICY_API_KEY: SECRETS.LOOPTOOL_POLICY_API_KEY,
        LOOPTOOL_JUDGE_API_KEY: SECRETS.LOOPTOOL_JUDGE_API_KEY,
        LOOPTOOL_GENERATOR_API_KEY: SECRETS.LOOPTOOL_GENERATOR_API_KEY,
        LOOPTOOL_LLM_API_KEY: SECRETS.LOOPTOOL_LLM_API_KEY,
        // Held but not needed by this loop (sim trainer): a held secret must not leak either.
        RAY_AUTH_TOKEN: SECRETS.RAY_AUTH_TOKEN,
      },
      [FALLBACK_LOOP]: {
        ...base,
        LOOPTOOL_LLM_API_KEY: SECRETS.LOOPTOOL_LLM_API_KEY,
        RAY_AUTH_TOKEN: SECRETS.RAY_AUTH_TOKEN,
      },
    };
    for (const name of LOOPS) {
      const suffix = `-t${randomBytes(4).toString('hex')}`;
      const config = configs[name]!;
      await loops.start({ loopName: name, config, configHash: contentHash(config), queues: taskQueues(suffix) });
      workers[name] = startWorkerProcess({
        ...envs[name],
        LOOPTOOL_TASK_QUEUE_SUFFIX: suffix,
        LOOPTOOL_ARTIFACTS_DIR: path.join(scratch, `artifacts-${name}`),
      });
    }

    // While the loops run: heartbeat details of pending activities (the training log tail, batch progress) and the
    // status query's answers exist only now, so they are sampled until both loops are done.
    let running = true;
    const sampler = (async () => {
      while (running) {
        for (const name of LOOPS) {
          const handle = loops.handle(name);
          const described = await handle.describe().catch(() => undefined);
          if (described)
            whileRunning.push({ where: `${name}: describe while running`, text: textOf(described).join('\n') });
          const status = await handle.query(statusQuery).catch(() => undefined);
          if (status) whileRunning.push({ where: `${name}: status query`, text: JSON.stringify(status) });
        }
        const { rows } = await db.pool.query<{ n: string }>(
          'SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1::text AND datname = current_database()',
          [role],
        );
        roleSessionsSeen = Math.max(roleSessionsSeen, Number(rows[0]!.n));
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    })();
    try {
      const results = await Promise.all(LOOPS.map((name) => loops.handle(name).result()));
      for (const result of results) expect(result.iterations).toBe(ITERATIONS);
    } finally {
      running = false;
      await sampler;
    }
  }, 300_000);

  afterAll(async () => {
    await Promise.all(Object.values(workers).map((worker) => worker.stop()));
    await loops?.close();
    await ray?.close();
    await Promise.all(Object.values(servers).map((server) => server.close()));
    await db?.drop();
    const admin = new pg.Client({ connectionString: inject('adminDatabaseUrl') });
    await admin.connect();
    try {
      await admin.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
    } finally {
      await admin.end();
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  test('every planted secret was used: each server and the Jobs API saw its key, and nothing was refused', () => {
    const routes = (server: SimServer) => server.stats().routes;
    const refused = (server: SimServer) => Object.values(routes(server)).reduce((n, r) => n + r.rejected, 0);

    // LOOPTOOL_POLICY_API_KEY: probe and evaluation chats, LoRA hot-loading and the model listing of deploy.
    const policy = routes(servers.policy);
    expect(policy['POST /v1/chat/completions']?.withKey).toBeGreaterThan(0);
    expect(policy['POST /v1/load_lora_adapter']?.withKey).toBeGreaterThanOrEqual(ITERATIONS);
    expect(policy['GET /v1/models']?.withKey).toBeGreaterThan(0);
    // LOOPTOOL_JUDGE_API_KEY (votes and expansion validation) and LOOPTOOL_GENERATOR_API_KEY.
    expect(servers.judge.stats().requests.byTask.judge).toBeGreaterThan(0);
    expect(servers.judge.stats().requests.byTask.validator).toBeGreaterThan(0);
    expect(routes(servers.judge)['POST /v1/chat/completions']?.withKey).toBeGreaterThan(0);
    expect(servers.generator.stats().requests.byTask.generator).toBeGreaterThan(0);
    expect(routes(servers.generator)['POST /v1/chat/completions']?.withKey).toBeGreaterThan(0);
    // LOOPTOOL_LLM_API_KEY, the fallback: every role of the second loop, deploy included.
    const fallback = servers.fallback.stats();
    for (const task of ['student', 'judge', 'validator', 'generator'] as const)
      expect(fallback.requests.byTask[task], task).toBeGreaterThan(0);
    expect(fallback.routes['POST /v1/chat/completions']?.withKey).toBeGreaterThan(0);
    expect(fallback.routes['POST /v1/load_lora_adapter']?.withKey).toBeGreaterThanOrEqual(ITERATIONS);
    // A request without the right key is answered 401 and counted: none was, so every one carried its key.
    for (const server of Object.values(servers)) expect(refused(server)).toBe(0);
    // RAY_AUTH_TOKEN: submit, status and logs of one job per iteration, all with the token.
    expect(ray.authorized).toBeGreaterThan(ITERATIONS);
    expect(ray.rejected).toBe(0);
    // DATABASE_URL: the worker's sessions ran as the URL's role (the password itself is not checked: trust auth).
    expect(roleSessionsSeen).toBeGreaterThan(0);
  });

  test('no workflow history, memo, search attribute or query answer holds one', async () => {
    const findings: Finding[] = [];
    const workflowIdsSeen = new Set<string>();
    let historyText = '';
    for (const name of LOOPS) {
      const executions = [];
      for await (const execution of client.workflow.list({ query: `WorkflowId STARTS_WITH "loop/${name}"` }))
        executions.push(execution);
      for (const execution of executions) {
        workflowIdsSeen.add(execution.workflowId);
        const handle = client.workflow.getHandle(execution.workflowId, execution.runId);
        const where = `${execution.workflowId} run ${execution.runId}`;
        const history = textOf(await handle.fetchHistory()).join('\n');
        historyText += history;
        findings.push(...findSecrets(`${where}: history`, history));
        findings.push(
          ...findSecrets(`${where}: describe (memo, search attributes)`, textOf(await handle.describe()).join('\n')),
        );
      }
      // Queries are answered by a worker replaying the run: asked while the workers are still up.
      const latest = loops.handle(name);
      findings.push(...findSecrets(`${name}: status query`, JSON.stringify(await latest.query(statusQuery))));
      findings.push(
        ...findSecrets(`${name}: metadata query`, JSON.stringify(await latest.query('__temporal_workflow_metadata'))),
      );
      // Every run of the loop (one per iteration) and of each stage child was listed and read.
      const loopRuns = executions.filter((e) => e.workflowId === workflowIds.loop(name));
      expect(loopRuns).toHaveLength(ITERATIONS);
      // The last iteration assembles nothing, so it runs no stages.
      for (let j = 1; j < ITERATIONS; j++)
        for (const stage of ['probe', 'judge', 'expand'])
          expect(workflowIdsSeen, `${name} iteration ${j} ${stage}`).toContain(workflowIds.stage(name, j, stage));
    }
    for (const { where, text } of whileRunning) findings.push(...findSecrets(where, text));
    // The scan reads payloads as text: the policy's served names and the servers' addresses are in them.
    expect(historyText).toContain(`${ROLES_LOOP}-iter-2`);
    expect(historyText).toContain(servers.judge.baseURL);
    expect(whileRunning.length).toBeGreaterThan(0);
    expect(findings).toEqual([]);
  });

  test("no worker's output holds one", async () => {
    await Promise.all(Object.values(workers).map((worker) => worker.stop()));
    const findings = Object.entries(workers).flatMap(([name, worker]) =>
      findSecrets(`worker of ${name}: stdout/stderr`, worker.output()),
    );
    // What was scanned is the worker's real output: its start line names the database, password redacted.
    for (const worker of Object.values(workers)) expect(worker.output()).toContain(`postgres://${role}:***@`);
    expect(findings).toEqual([]);
  });

  test('no table of the database holds one', async () => {
    const { rows: tables } = await db.pool.query<{ name: string }>(
      `SELECT table_name AS name FROM information_schema.tables
       WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`,
    );
    const findings: Finding[] = [];
    let dumped = '';
    for (const { name } of tables) {
      const { rows } = await db.pool.query<{ row: string }>(
        `SELECT t::text AS row FROM public.${pg.escapeIdentifier(name)} t`,
      );
      const text = rows.map((r) => r.row).join('\n');
      dumped += text;
      findings.push(...findSecrets(`table ${name}`, text));
    }
    // The dump holds what the loops wrote: their configs (with the servers' addresses) and model-call ledgers.
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['loops', 'samples', 'dataset_versions']));
    expect(dumped).toContain(servers.generator.baseURL);
    expect(dumped).toContain(ray.address);
    expect(findings).toEqual([]);
  });

  test('no file the worker wrote and nothing it submitted to the training engine holds one', () => {
    const files = [
      ...filesUnder(path.join(scratch, `artifacts-${ROLES_LOOP}`)),
      ...filesUnder(path.join(scratch, `artifacts-${FALLBACK_LOOP}`)),
      ...filesUnder(path.join(scratch, 'ray-work')),
    ];
    const findings = [
      ...files.flatMap((file) => findSecrets(path.relative(scratch, file), readFileSync(file))),
      ...ray.bodies.flatMap((body, i) => findSecrets(`Ray Jobs API request ${i + 1}`, body)),
    ];
    // Training data, job specs and checkpoints of both loops were there to scan, and the Ray submissions.
    expect(files.some((file) => file.endsWith('spec.json'))).toBe(true);
    expect(files.length).toBeGreaterThan(ITERATIONS * 2);
    expect(ray.bodies.some((body) => body.includes('LOOPTOOL_TRAINING_SPEC'))).toBe(true);
    expect(findings).toEqual([]);
  });
});
