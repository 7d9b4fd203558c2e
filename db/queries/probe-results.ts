import type { Queryable } from '../tx.js';
import type { ProbeOutcome } from '../../core/vocabulary.js';
import type { SeqRange } from '../../core/inputs.js';
import type { ModelCallRow } from './model-calls.js';
import {
  type BatchItem,
  insertStageRows,
  ONE_LOOKUP_PER_ROW,
  type ProducedBy,
  type StageKey,
} from './stage-batches.js';
import { insertRowsStatement } from './unnest.js';

/**
 * Members of a version in the range that have no probe result yet for this iteration. Reading "what is left" from
 * the results table, rather than trusting a cursor, is what makes a retried probe resume after its last written sample
 * and never probe a sample twice.
 */
export async function pendingProbeItems(
  q: Queryable,
  input: StageKey & SeqRange & { versionId: number; limit: number },
): Promise<BatchItem[]> {
  const { rows } = await q.query<{ seq: string; sample_id: string }>(
    `SELECT m.sample_seq AS seq, s.id AS sample_id
     FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     WHERE m.version_id = $1::bigint AND m.sample_seq > $2::bigint AND m.sample_seq <= $3::bigint
       AND NOT EXISTS (SELECT 1 FROM probe_results p
                       WHERE p.loop_name = $4::text AND p.iteration = $5::int AND p.sample_id = s.id ${ONE_LOOKUP_PER_ROW})
     ORDER BY m.sample_seq LIMIT $6::int`,
    [input.versionId, input.afterSeq, input.lastSeq, input.loopName, input.iteration, input.limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), sampleId: r.sample_id }));
}

export interface ProbeResultRow extends ProducedBy {
  sampleId: string;
  outcome: ProbeOutcome;
  rawOutput: string;
  /** Canonical JSON of the parsed calls, or null when the output did not parse. */
  parsedCalls: string | null;
  errorType: string | null;
  error: string | null;
  meanLogprob: number | null;
  perplexity: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  latencyMs: number | null;
}

/** Writes probe results; a row that exists (a retried batch) is kept as first written. Returns rows inserted. */
export const insertProbeResults = (q: Queryable, key: StageKey, rows: readonly ProbeResultRow[]): Promise<number> =>
  insertStageRows(q, 'probe_results', key, rows, 'sample_id');

/**
 * One probe page's results and its model-call ledger rows in ONE statement (two data-modifying CTEs): atomic on its
 * own, so a page costs one round trip instead of BEGIN, two inserts and COMMIT. The same rules as
 * {@link insertProbeResults} and `recordModelCalls`: a result or call key that exists (a retried batch) is kept as first
 * written. Returns the results inserted.
 */
export async function insertProbePage(
  q: Queryable,
  key: StageKey,
  rows: readonly ProbeResultRow[],
  calls: readonly ModelCallRow[],
): Promise<number> {
  if (calls.length === 0) return insertProbeResults(q, key, rows);
  const ledger = await insertRowsStatement(q, 'model_calls', calls, {
    onConflict: 'ON CONFLICT (call_key) DO NOTHING',
  });
  if (rows.length === 0) {
    await q.query(ledger.sql, ledger.params);
    return 0;
  }
  const results = await insertRowsStatement(
    q,
    'probe_results',
    rows,
    {
      shared: { loop_name: key.loopName, iteration: key.iteration },
      onConflict: 'ON CONFLICT (loop_name, iteration, sample_id) DO NOTHING',
    },
    ledger.params.length + 1,
  );
  const { rows: counted } = await q.query<{ n: number }>(
    `WITH calls AS (${ledger.sql} RETURNING 1), results AS (${results.sql} RETURNING 1)
     SELECT (SELECT count(*) FROM results)::int AS n, (SELECT count(*) FROM calls)::int AS calls`,
    [...ledger.params, ...results.params],
  );
  return counted[0]?.n ?? 0;
}

/**
 * Samples a loop's probe found too long for the policy's context or the trainer's prompt budget (any iteration): the
 * training exports leave them out (verl would drop them anyway; TRL's recipe too).
 */
export async function tooLongSampleIds(q: Queryable, loopName: string): Promise<Set<string>> {
  const { rows } = await q.query<{ sample_id: string }>(
    `SELECT DISTINCT sample_id FROM probe_results WHERE loop_name = $1::text AND outcome = 'too_long'`,
    [loopName],
  );
  return new Set(rows.map((r) => r.sample_id));
}
