import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { pendingJudgeItems } from '../../db/queries/judgements.js';
import { pendingExpansionSeeds } from '../../db/queries/expansions.js';
import { pendingProbeItems } from '../../db/queries/probe-results.js';
import { batchCounts } from '../../db/queries/stage-batches.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

/**
 * A batch's queries read what the batch covers, not everything its stage wrote. While a stage runs, its table grows
 * far past the statistics last gathered (none, on a new loop); the planner then reckoned on one row and read every
 * result of the loop's iteration for every page, so a stage slowed with each page it wrote. Here the statistics are
 * gathered while the stage tables are empty, 3,000 results are written after, and each query over a 200-sample range
 * must read (by the primary keys' index tuples, from PostgreSQL's own counters) a few per sample in the range at most.
 */
const SAMPLES = 3_000;
const RESULTS = 2_900;
const LOOP = 'growing';
let db: TestDatabase;
let client: pg.PoolClient;
let versionId: number;
let firstSeq: number;

beforeAll(async () => {
  db = await createTestDatabase();
  client = await db.pool.connect();
  await client.query(`INSERT INTO toolsets (id, tools, n_tools) VALUES (repeat('0', 64), '[]', 0)`);
  await client.query(
    `INSERT INTO samples (id, toolset_id, messages, target)
     SELECT encode(sha256(('s' || i)::bytea), 'hex'), repeat('0', 64), '[]', '{"kind":"text"}' FROM generate_series(1, $1::int) i`,
    [SAMPLES],
  );
  await client.query(`INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ($1, '{}', 'test', 'loop/x')`, [
    LOOP,
  ]);
  const version = await client.query<{ id: string }>(
    `INSERT INTO dataset_versions (dataset, version, idempotency_key) VALUES ('d', 1, 'd:1') RETURNING id`,
  );
  versionId = Number(version.rows[0]!.id);
  await client.query(`INSERT INTO dataset_members (version_id, sample_seq, role) SELECT $1, seq, 'seed' FROM samples`, [
    versionId,
  ]);
  firstSeq = Number((await client.query<{ min: string }>('SELECT min(seq) FROM samples')).rows[0]!.min);
  await client.query('ANALYZE');
  // Written after the statistics, as a running stage writes them: the first RESULTS samples probed (all mismatches),
  // judged (error seeds), with one expansion each.
  const first = `SELECT id FROM samples ORDER BY seq LIMIT ${RESULTS}`;
  await client.query(
    `INSERT INTO probe_results (loop_name, iteration, sample_id, outcome, raw_output, model, prompt_version)
     SELECT $1, 1, id, 'mismatch', 'x', 'm', 'v' FROM (${first}) f`,
    [LOOP],
  );
  await client.query(
    `INSERT INTO judgements (loop_name, iteration, sample_id, verdict, consensus, vote_count, votes, model, prompt_version)
     SELECT $1, 1, id, 'pred_wrong', true, 1, '[]', 'm', 'v' FROM (${first}) f`,
    [LOOP],
  );
  await client.query(
    `INSERT INTO expansions (loop_name, iteration, seed_sample_id, k, status, scenario_focus, attempts, model, prompt_version)
     SELECT $1, 1, id, 0, 'generation_failed', 'x', 1, 'm', 'v' FROM (${first}) f`,
    [LOOP],
  );
});

afterAll(async () => {
  client?.release();
  await db?.drop();
});

/** Index tuples read from each stage table's primary key so far, by this database's backends. */
async function primaryKeyReads(): Promise<Record<string, number>> {
  // Counters reach the shared statistics when a backend goes idle; forced, then read afresh.
  await client.query('SELECT pg_stat_force_next_flush()');
  await client.query('SELECT 1');
  await client.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await client.query<{ relname: string; n: string }>(
    `SELECT relname, idx_tup_read AS n FROM pg_stat_user_indexes
     WHERE indexrelname IN ('probe_results_pkey', 'judgements_pkey', 'expansions_pkey')`,
  );
  return Object.fromEntries(rows.map((r) => [r.relname, Number(r.n)]));
}

async function readsOf(work: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await primaryKeyReads();
  await work();
  const after = await primaryKeyReads();
  return Object.fromEntries(Object.keys(after).map((table) => [table, after[table]! - (before[table] ?? 0)]));
}

describe('a batch reads its range, not its whole stage', () => {
  // The last 200 samples: 100 probed, 100 not.
  const range = () => ({ afterSeq: firstSeq + SAMPLES - 201, lastSeq: firstSeq + SAMPLES - 1 });
  const key = { loopName: LOOP, iteration: 1 };
  const AT_MOST = 2 * 200;

  test('pending probe items', async () => {
    let items: unknown[] = [];
    const reads = await readsOf(async () => {
      items = await pendingProbeItems(client, { ...key, ...range(), versionId, limit: 50 });
    });
    expect(items).toHaveLength(50);
    expect(reads.probe_results).toBeLessThanOrEqual(AT_MOST);
  });

  test('pending judge items and pending expansion seeds', async () => {
    let judge: unknown[] = ['unset'];
    let expand: unknown[] = [];
    const reads = await readsOf(async () => {
      judge = await pendingJudgeItems(client, { ...key, ...range(), limit: 50 });
      expand = await pendingExpansionSeeds(client, { ...key, ...range(), k: 2, limit: 50 });
    });
    // Every probed sample in the range is judged already; each judged one has 1 of its 2 expansions.
    expect(judge).toHaveLength(0);
    expect(expand).toHaveLength(50);
    expect(reads.probe_results).toBeLessThanOrEqual(AT_MOST);
    expect(reads.judgements).toBeLessThanOrEqual(AT_MOST);
    expect(reads.expansions).toBeLessThanOrEqual(2 * AT_MOST);
  });

  test('batch counts of each stage', async () => {
    const counts: Record<string, Record<string, number>> = {};
    const reads = await readsOf(async () => {
      for (const stage of ['probe', 'judge', 'expand'] as const)
        counts[stage] = await batchCounts(client, { ...key, ...range(), stage });
    });
    expect(counts).toEqual({
      probe: { mismatch: 100 },
      judge: { pred_wrong: 100, relabeled: 0 },
      expand: { generation_failed: 100, seeds: 100 },
    });
    expect(reads.probe_results).toBeLessThanOrEqual(AT_MOST);
    expect(reads.judgements).toBeLessThanOrEqual(2 * AT_MOST);
    expect(reads.expansions).toBeLessThanOrEqual(2 * AT_MOST);
  });
});
