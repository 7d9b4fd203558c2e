/**
 * What two loops with one seed must agree on, read from PostgreSQL: every content column of the rows a loop writes
 * (dataset versions and their members, probe results, judgements, expansions, evaluations, training runs,
 * deployments, lineage, the model-call ledger), without ids, latencies, timestamps and server addresses, and with the
 * loop's name replaced by `<loop>` (it is part of dataset names, served model names, job keys and paths). Rows are
 * compared as multisets, so a duplicated row shows up as one the reference does not have.
 */
import type pg from 'pg';

/** One query per table: the loop's rows as content only. `$1` is the loop's name. */
const CONTENT: Record<string, string> = {
  dataset_versions: `SELECT v.iteration, v.dataset, v.version, v.status, v.member_count, v.counts_by_role::text AS counts_by_role,
      v.note, v.idempotency_key, p.dataset AS parent_dataset, p.version AS parent_version
    FROM dataset_versions v LEFT JOIN dataset_versions p ON p.id = v.parent_id WHERE v.loop_name = $1`,
  dataset_members: `SELECT v.iteration, s.id AS sample_id, m.role FROM dataset_versions v
    JOIN dataset_members m ON m.version_id = v.id JOIN samples s ON s.seq = m.sample_seq WHERE v.loop_name = $1`,
  probe_results: `SELECT iteration, sample_id, outcome, raw_output, parsed_calls::text AS parsed_calls, error_type, error,
      mean_logprob, perplexity, prompt_tokens, completion_tokens, model, prompt_version
    FROM probe_results WHERE loop_name = $1`,
  judgements: `SELECT iteration, sample_id, verdict, consensus, vote_count, votes::text AS votes, error_analysis,
      correct_approach, corrected_sample_id, model, prompt_version
    FROM judgements WHERE loop_name = $1`,
  expansions: `SELECT iteration, seed_sample_id, k, status, sample_id, scenario_focus, attempts, raw_output,
      rejection_reason, model, prompt_version
    FROM expansions WHERE loop_name = $1`,
  evaluations: `SELECT iteration, eval_set, category, total, correct, accuracy FROM evaluations WHERE loop_name = $1`,
  training_runs: `SELECT iteration, backend, job_key, status, checkpoint_uri, base_checkpoint, metrics::text AS metrics
    FROM training_runs WHERE loop_name = $1`,
  deployments: `SELECT iteration, served_model, kind, checkpoint_path FROM deployments WHERE loop_name = $1`,
  sample_origins: `SELECT sample_id, kind, parent_sample_id, iteration, detail::text AS detail
    FROM sample_origins WHERE loop_name = $1`,
  model_calls: `SELECT call_key, iteration, stage, role, model, prompt_tokens, completion_tokens, ok
    FROM model_calls WHERE loop_name = $1`,
  stage_batches: `SELECT iteration, stage, batch_no, last_seq - after_seq AS span FROM stage_batches WHERE loop_name = $1`,
};

/**
 * Natural keys of the loop's rows: each must occur once. Most are primary keys or unique indexes already; checked
 * here all the same, because "no row is duplicated" is what the chaos run must show, not assume.
 */
const NATURAL_KEYS: Record<string, string> = {
  dataset_versions: `SELECT iteration::text AS key, count(*)::int AS n FROM dataset_versions WHERE loop_name = $1 GROUP BY 1`,
  dataset_members: `SELECT m.version_id || ':' || m.sample_seq AS key, count(*)::int AS n FROM dataset_members m
    JOIN dataset_versions v ON v.id = m.version_id WHERE v.loop_name = $1 GROUP BY 1`,
  probe_results: `SELECT iteration || ':' || sample_id AS key, count(*)::int AS n FROM probe_results WHERE loop_name = $1 GROUP BY 1`,
  judgements: `SELECT iteration || ':' || sample_id AS key, count(*)::int AS n FROM judgements WHERE loop_name = $1 GROUP BY 1`,
  expansions: `SELECT iteration || ':' || seed_sample_id || ':' || k AS key, count(*)::int AS n FROM expansions
    WHERE loop_name = $1 GROUP BY 1`,
  expansion_samples: `SELECT sample_id AS key, count(*)::int AS n FROM expansions
    WHERE loop_name = $1 AND status = 'accepted' GROUP BY 1`,
  evaluations: `SELECT iteration || ':' || eval_set || ':' || category AS key, count(*)::int AS n FROM evaluations
    WHERE loop_name = $1 GROUP BY 1`,
  training_runs: `SELECT iteration::text AS key, count(*)::int AS n FROM training_runs WHERE loop_name = $1 GROUP BY 1`,
  deployments: `SELECT iteration::text AS key, count(*)::int AS n FROM deployments WHERE loop_name = $1 GROUP BY 1`,
  sample_origins: `SELECT sample_id || ':' || kind || ':' || coalesce(parent_sample_id, '') || ':' || coalesce(iteration, -1) AS key,
      count(*)::int AS n FROM sample_origins WHERE loop_name = $1 GROUP BY 1`,
  model_calls: `SELECT call_key AS key, count(*)::int AS n FROM model_calls WHERE loop_name = $1 GROUP BY 1`,
};

export type LoopSnapshot = Record<string, string[]>;

function normalize(value: unknown, loopName: string): unknown {
  if (typeof value === 'string') return value.split(loopName).join('<loop>');
  return value;
}

/** The loop's rows per table, each as the canonical JSON of its content columns, sorted. */
export async function snapshotLoop(pool: pg.Pool, loopName: string): Promise<LoopSnapshot> {
  const snapshot: LoopSnapshot = {};
  for (const [table, sql] of Object.entries(CONTENT)) {
    const { rows } = await pool.query<Record<string, unknown>>(sql, [loopName]);
    snapshot[table] = rows
      .map((row) =>
        JSON.stringify(
          Object.fromEntries(Object.entries(row).map(([key, value]) => [key, normalize(value, loopName)])),
        ),
      )
      .sort();
  }
  return snapshot;
}

/** Natural keys that occur more than once among the loop's rows, as `table key ×n`. */
export async function duplicateRows(pool: pg.Pool, loopName: string): Promise<string[]> {
  const found: string[] = [];
  for (const [table, sql] of Object.entries(NATURAL_KEYS)) {
    const { rows } = await pool.query<{ key: string; n: number }>(`${sql} HAVING count(*) > 1`, [loopName]);
    for (const row of rows) found.push(`${table} ${row.key} ×${row.n}`);
  }
  return found;
}

/**
 * Rows one snapshot has and the other has not (as multisets: a row twice in `chaos` and once in `reference` is one
 * extra), per table, at most `limit` examples each; empty when they are equal.
 */
export function diffSnapshots(reference: LoopSnapshot, chaos: LoopSnapshot, limit = 5): string[] {
  const differences: string[] = [];
  for (const table of Object.keys(CONTENT)) {
    const counts = new Map<string, number>();
    for (const row of reference[table] ?? []) counts.set(row, (counts.get(row) ?? 0) + 1);
    for (const row of chaos[table] ?? []) counts.set(row, (counts.get(row) ?? 0) - 1);
    const missing = [...counts].filter(([, n]) => n > 0);
    const extra = [...counts].filter(([, n]) => n < 0);
    if (missing.length === 0 && extra.length === 0) continue;
    const refRows = reference[table]?.length ?? 0;
    const chaosRows = chaos[table]?.length ?? 0;
    differences.push(
      `${table}: reference ${refRows} rows, chaos ${chaosRows}; ${missing.length} only in the reference, ${extra.length} only in the chaos run`,
    );
    for (const [row] of missing.slice(0, limit)) differences.push(`  reference only: ${row.slice(0, 600)}`);
    for (const [row] of extra.slice(0, limit)) differences.push(`  chaos only:     ${row.slice(0, 600)}`);
  }
  return differences;
}

/** Rows per table of a snapshot. */
export function rowCounts(snapshot: LoopSnapshot): Record<string, number> {
  return Object.fromEntries(Object.entries(snapshot).map(([table, rows]) => [table, rows.length]));
}
