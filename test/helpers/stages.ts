import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createActivities, createActivityDeps, type Activities, type ActivityDeps } from '../../activities/index.js';
import { LlmRegistry } from '../../activities/llm/registry.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { compileSampleChecker } from '../../core/checker/index.js';
import { canonicalJson, parseJson, type JsonValue } from '../../core/json.js';
import type { Sample, Target } from '../../core/schemas/sample.js';
import type { DatasetVersion } from '../../db/queries/versions.js';
import { generateSeedData, writeSeedData, type SeedSample } from '../../sim/seed-data.js';
import { startSimServer, type SimServer, type SimServerOptions, type SimStats } from '../../sim/server.js';
import { createTestDatabase, type TestDatabase } from './db.js';

/**
 * One test file's world for the model-facing stages: its own migrated database, its own simulated model server, and
 * seed data imported into a frozen dataset version the way `looptool data import` does it (stageFile +
 * versionFromImport). `seeds` are the generated samples with their true targets, for checking the stages against the
 * sim's truth.
 */
export interface StageFixture {
  db: TestDatabase;
  sim: SimServer;
  seeds: SeedSample[];
  /** Sample id → the generated seed sample (true target, corruption). */
  seedById: Map<string, SeedSample>;
  seedVersion: DatasetVersion;
  deps: ActivityDeps;
  activities: Activities;
  close(): Promise<void>;
}

export async function createStageFixture(options: {
  count: number;
  seed: number;
  wrongLabelRate: number;
  sim?: SimServerOptions;
}): Promise<StageFixture> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-stages-'));
  const db = await createTestDatabase();
  const sim = await startSimServer({ port: 0, seed: 7, trainer: { jobSeconds: 0.2 }, ...options.sim });
  try {
    const file = path.join(scratch, 'seed.jsonl');
    const seedOptions = { count: options.count, seed: options.seed, wrongLabelRate: options.wrongLabelRate };
    await writeSeedData(file, seedOptions);
    const seeds = generateSeedData(seedOptions);
    const staged = await stageFile({ pool: db.pool, file, format: 'openai', purpose: 'import', target: 'seed' });
    const { version } = await versionFromImport(db.pool, { dataset: 'seed', batchId: staged.batchId });
    if (!version) throw new Error('the seed import made no version');
    const deps = createActivityDeps({ pool: db.pool, artifactsDir: path.join(scratch, 'artifacts') });
    return {
      db,
      sim,
      seeds,
      seedById: new Map(seeds.map((s) => [s.id, s])),
      seedVersion: version,
      deps,
      activities: createActivities(deps),
      async close() {
        await sim.close();
        await db.drop();
        rmSync(scratch, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await sim.close();
    await db.drop();
    rmSync(scratch, { recursive: true, force: true });
    throw err;
  }
}

/** The anchor row every stage table's foreign keys need. */
export async function addLoop(fixture: StageFixture, name: string): Promise<void> {
  await fixture.db.pool.query(
    `INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ($1::text, '{}', 'test', $2::text)`,
    [name, `loop/${name}`],
  );
}

/** Activities built on other deps (e.g. a model registry whose fetch rewrites replies), over the same database. */
export function activitiesWith(fixture: StageFixture, llm: LlmRegistry): Activities {
  return createActivities({ ...fixture.deps, llm });
}

/**
 * Runs one activity in a fresh MockActivityEnvironment (the SDK's real activity Context: heartbeats, cancellation
 * signal). A fresh environment per call, since a cancelled one stays cancelled. `onHeartbeat` sees every heartbeat and
 * the environment (to cancel from inside).
 */
export function runActivity<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  args: A,
  hooks: { onHeartbeat?: (details: unknown, env: MockActivityEnvironment) => void; env?: MockActivityEnvironment } = {},
): Promise<R> {
  const env = hooks.env ?? quietEnvironment();
  if (hooks.onHeartbeat) env.on('heartbeat', (details: unknown) => hooks.onHeartbeat!(details, env));
  return env.run(fn, ...args);
}

export function quietEnvironment(): MockActivityEnvironment {
  return new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
}

/** The change in the sim's counters over `fn`. */
export async function simDelta<T>(
  sim: SimServer,
  fn: () => Promise<T>,
): Promise<{
  result: T;
  before: SimStats;
  after: SimStats;
  requests: (role: 'policy' | 'judge' | 'generator') => number;
}> {
  const before = sim.stats();
  const result = await fn();
  const after = sim.stats();
  return { result, before, after, requests: (role) => after.requests.byRole[role] - before.requests.byRole[role] };
}

export const count = async (fixture: StageFixture, sql: string, params: unknown[] = []): Promise<number> =>
  Number((await fixture.db.pool.query<{ n: string }>(sql, params)).rows[0]!.n);

/** The member seq range of a version: the whole version as one batch. */
export async function wholeVersion(
  fixture: StageFixture,
  versionId: number,
): Promise<{ afterSeq: number; lastSeq: number }> {
  const { rows } = await fixture.db.pool.query<{ lo: string; hi: string }>(
    'SELECT min(sample_seq) AS lo, max(sample_seq) AS hi FROM dataset_members WHERE version_id = $1::bigint',
    [versionId],
  );
  return { afterSeq: Number(rows[0]!.lo) - 1, lastSeq: Number(rows[0]!.hi) };
}

/** Every seq: a range that covers any batch of any stage. */
export const ALL = { afterSeq: 0, lastSeq: Number.MAX_SAFE_INTEGER } as const;

type Reply = { content: string | null; tool_calls: JsonValue[] | null };

/** Whether a reply is right for `target` (on the sample's tools and conversation) by the exact checker. */
export function replyIsRight(sample: Sample, target: Target, reply: Reply): boolean {
  const checker = compileSampleChecker({ sample: { ...sample, target }, config: { mode: 'exact' } });
  if (!checker.ok) throw new Error(checker.error);
  return checker.checker.check(reply).valid;
}

/** The model reply a probe row stored: `raw_output` is the tool calls' canonical JSON when there were calls. */
export function replyOf(rawOutput: string): Reply {
  if (rawOutput.startsWith('[{"function":')) {
    const parsed = parseJson(rawOutput);
    if (parsed.ok && Array.isArray(parsed.value)) return { content: null, tool_calls: parsed.value };
  }
  return { content: rawOutput, tool_calls: null };
}

/** A target written as the reply a model would give for it (to check a corrected label against the truth). */
export function replyFromTarget(target: Target): Reply {
  if (target.kind === 'text') return { content: target.text ?? '', tool_calls: null };
  if (target.kind !== 'calls') throw new Error('acceptable targets have no single reply');
  return {
    content: null,
    tool_calls: target.calls.map((call, index) => ({
      id: `call_${index}`,
      type: 'function',
      function: { name: call.name, arguments: canonicalJson(call.arguments) },
    })),
  };
}

/**
 * A fetch for the model clients that sends every request to the real (simulated) server and lets `rewrite` replace the
 * assistant text of structured replies, e.g. to make the judge echo the verdict options or answer in prose. The
 * request body (parsed) tells which task it was.
 */
export function rewritingFetch(
  rewrite: (request: { schemaName: string | undefined; body: Record<string, unknown> }, content: string) => string,
): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    if (typeof init?.body !== 'string' || response.status !== 200) return response;
    const body = JSON.parse(init.body) as Record<string, unknown>;
    const schemaName = (body.response_format as { json_schema?: { name?: string } } | undefined)?.json_schema?.name;
    const json = (await response.json()) as { choices: { message: { content: string | null } }[] };
    const message = json.choices[0]?.message;
    if (message && typeof message.content === 'string')
      message.content = rewrite({ schemaName, body }, message.content);
    return new Response(JSON.stringify(json), { status: 200, headers: { 'content-type': 'application/json' } });
  };
}

/** A model registry whose clients use `fetch`. */
export function registryWith(fetchImpl: typeof fetch): LlmRegistry {
  return new LlmRegistry({ fetch: fetchImpl });
}

/** Chi-square statistic of observed counts against a uniform distribution over `categories`. */
export function chiSquareUniform(counts: Record<string, number>, categories: readonly string[]): number {
  const total = categories.reduce((sum, c) => sum + (counts[c] ?? 0), 0);
  const expected = total / categories.length;
  return categories.reduce((sum, c) => sum + ((counts[c] ?? 0) - expected) ** 2 / expected, 0);
}
