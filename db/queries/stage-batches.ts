import type { Queryable } from '../tx.js';
import { insertRows } from './unnest.js';
import type { SeqRange } from '../../core/inputs.js';
import type { BatchedStage } from '../../core/vocabulary.js';

/** A sample to work on in a stage batch: its storage key (the batch cursor) and its content id. */
export interface BatchItem {
  seq: number;
  sampleId: string;
}

/**
 * One sample of a stage page as stored (canonical JSON text, see `StoredSample`), its tool list's text only on the
 * first sample of each toolset in the page and null on the others: a toolset serves several samples (a dialogue's
 * turns, EDDE's expansions of one seed), and its text is the largest part of a sample, so it is sent, parsed and
 * validated once per page.
 */
export interface PageSample {
  id: string;
  toolsetId: string;
  toolsJson: string | null;
  messagesJson: string;
  targetJson: string;
}

/** A page's samples by id, in the order asked (ids that do not exist are left out); see {@link PageSample}. */
export async function getPageSamples(q: Queryable, ids: readonly string[]): Promise<PageSample[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<PageSample>(
    `SELECT s.id, s.toolset_id AS "toolsetId",
       CASE WHEN row_number() OVER (PARTITION BY s.toolset_id ORDER BY u.ord) = 1 THEN t.tools::text END AS "toolsJson",
       s.messages::text AS "messagesJson", s.target::text AS "targetJson"
     FROM unnest($1::text[]) WITH ORDINALITY AS u(id, ord)
     JOIN samples s ON s.id = u.id JOIN toolsets t ON t.id = s.toolset_id
     ORDER BY u.ord`,
    [ids],
  );
  return rows;
}

/** What every stage result row records about who produced it. */
export interface ProducedBy {
  model: string;
  promptVersion: string;
}

/**
 * Writes one stage's result rows for (loop, iteration); a row whose natural key exists (a retried batch) is kept as
 * first written. `key` names the columns that, with loop and iteration, identify a row. Returns rows inserted.
 */
export function insertStageRows<R extends object>(
  q: Queryable,
  table: string,
  stage: StageKey,
  rows: readonly R[],
  key: string,
): Promise<number> {
  return insertRows(q, table, rows, {
    shared: { loop_name: stage.loopName, iteration: stage.iteration },
    onConflict: `ON CONFLICT (loop_name, iteration, ${key}) DO NOTHING`,
  });
}

export interface StageKey {
  loopName: string;
  iteration: number;
}

/**
 * The probe results JGLV judges (alias `p`): mismatches and unparseable replies. Not `too_long` prompts (never asked),
 * nor replies the server mangled (`invalid_response`) or refused (`request_rejected`): those are stored as data but
 * say nothing about the policy, so they are neither judged nor seeds of new errors.
 */
export const JUDGEABLE_PROBE_RESULT = `p.outcome IN ('mismatch', 'parse_error')
  AND p.error_type IS DISTINCT FROM 'invalid_response' AND p.error_type IS DISTINCT FROM 'request_rejected'`;

/**
 * Ends a stage's "not done yet" subquery (`NOT EXISTS (SELECT 1 FROM <results> WHERE <key> = <row's key> …)`) so that
 * it stays one primary-key lookup per candidate row. Without it the planner may turn the subquery into an anti-join,
 * and while a stage runs its results table grows far past the statistics last gathered (none, on a new loop): it then
 * reckoned on one result and, for every page, read all of them and compared each with each candidate, 0.3 s a page
 * at 5,000 results and growing with every page written (`npm run bench -- stages`). `OFFSET 0` keeps the subquery
 * from being pulled up into a join, so it runs per row, with every key column in its index condition.
 */
export const ONE_LOOKUP_PER_ROW = 'OFFSET 0';

/**
 * `JOIN LATERAL (…) <alias> ON true`: a stage table's rows of this loop iteration (`$1` loop name, `$2` iteration)
 * whose `key` column is `sampleId`, looked up by key for each row of the query ({@link ONE_LOOKUP_PER_ROW}). A batch's
 * queries start from its samples (a seq range, by index) and look up each one's rows this way: starting from the
 * stage table instead reads every row of the loop's iteration for every page, which the planner chose whenever the
 * table had grown past its statistics.
 */
export const stageRowsOf = (table: string, alias: string, key: string, sampleId: string, columns = '*'): string =>
  `JOIN LATERAL (SELECT ${columns} FROM ${table} ${alias}
     WHERE ${alias}.loop_name = $1::text AND ${alias}.iteration = $2::int AND ${alias}.${key} = ${sampleId}
     ${ONE_LOOKUP_PER_ROW}) ${alias} ON true`;

/**
 * Splits the rows a stage will work through into batches of about `size`, as seq ranges: the workflow then fans out
 * over batch numbers and boundaries, never over sample ids, so its history stays small at a million samples.
 * `source` picks the rows: a version's members (probe), or this iteration's mismatches (judge) or error seeds (expand).
 */
export async function planSeqBatches(
  q: Queryable,
  input: StageKey & { source: 'members' | 'mismatches' | 'error_seeds'; versionId?: number; size: number },
): Promise<SeqRange[]> {
  const [rowsSql, params]: [string, unknown[]] =
    input.source === 'members'
      ? [`SELECT sample_seq AS seq FROM dataset_members WHERE version_id = $2::bigint`, [input.versionId ?? null]]
      : input.source === 'mismatches'
        ? [
            `SELECT s.seq FROM probe_results p JOIN samples s ON s.id = p.sample_id
             WHERE p.loop_name = $2::text AND p.iteration = $3::int AND ${JUDGEABLE_PROBE_RESULT}`,
            [input.loopName, input.iteration],
          ]
        : [
            `SELECT s.seq FROM judgements j JOIN samples s ON s.id = j.sample_id
             WHERE j.loop_name = $2::text AND j.iteration = $3::int AND j.verdict IN ('pred_wrong', 'label_wrong') AND j.consensus`,
            [input.loopName, input.iteration],
          ];
  // Every size-th seq closes a batch, plus the last one; ranges are (previous close, this close].
  const { rows } = await q.query<{ seq: string }>(
    `WITH ordered AS (SELECT seq, row_number() OVER (ORDER BY seq) AS rn, count(*) OVER () AS total FROM (${rowsSql}) r)
     SELECT seq FROM ordered WHERE rn % $1::int = 0 OR rn = total ORDER BY seq`,
    [input.size, ...params],
  );
  let after = 0;
  return rows.map((row) => {
    const range = { afterSeq: after, lastSeq: Number(row.seq) };
    after = range.lastSeq;
    return range;
  });
}

/**
 * Writes a stage's batch plan once (later calls keep the first plan) and returns the number of batches. The plan of
 * a stage only depends on rows the previous stages finished writing, so it is the same whenever it is computed.
 */
export async function planStage(
  q: Queryable,
  input: StageKey & { stage: BatchedStage; versionId?: number; size: number },
): Promise<number> {
  const existing = await q.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM stage_batches WHERE loop_name = $1::text AND iteration = $2::int AND stage = $3::text',
    [input.loopName, input.iteration, input.stage],
  );
  if ((existing.rows[0]?.n ?? 0) > 0) return existing.rows[0]!.n;
  const source = input.stage === 'probe' ? 'members' : input.stage === 'judge' ? 'mismatches' : 'error_seeds';
  const ranges = await planSeqBatches(q, { ...input, source });
  if (ranges.length === 0) return 0;
  await q.query(
    `INSERT INTO stage_batches (loop_name, iteration, stage, batch_no, after_seq, last_seq)
     SELECT $1::text, $2::int, $3::text, ord - 1, after_seq, last_seq
     FROM unnest($4::bigint[], $5::bigint[]) WITH ORDINALITY AS u(after_seq, last_seq, ord)
     ON CONFLICT DO NOTHING`,
    [input.loopName, input.iteration, input.stage, ranges.map((r) => r.afterSeq), ranges.map((r) => r.lastSeq)],
  );
  return ranges.length;
}

export async function getStageBatch(
  q: Queryable,
  input: StageKey & { stage: BatchedStage; batchNo: number },
): Promise<SeqRange> {
  const { rows } = await q.query<{ after_seq: string; last_seq: string }>(
    'SELECT after_seq, last_seq FROM stage_batches WHERE loop_name = $1::text AND iteration = $2::int AND stage = $3::text AND batch_no = $4::int',
    [input.loopName, input.iteration, input.stage, input.batchNo],
  );
  if (!rows[0])
    throw new Error(
      `no batch ${input.batchNo} planned for ${input.stage} of ${input.loopName} iteration ${input.iteration}`,
    );
  return { afterSeq: Number(rows[0].after_seq), lastSeq: Number(rows[0].last_seq) };
}

/**
 * What a stage has recorded for the rows of one batch, counted from the tables: a batch's result then says the same
 * whether it ran once or was retried after writing part of its work.
 */
export async function batchCounts(
  q: Queryable,
  input: StageKey & SeqRange & { stage: BatchedStage },
): Promise<Record<string, number>> {
  // Each from the batch's samples, each sample's rows looked up by key (stageRowsOf).
  const inRange = (join: string) => `FROM samples s ${join} WHERE s.seq > $3::bigint AND s.seq <= $4::bigint`;
  const probed = inRange(stageRowsOf('probe_results', 'p', 'sample_id', 's.id', 'outcome'));
  const judged = inRange(stageRowsOf('judgements', 'j', 'sample_id', 's.id', 'verdict, corrected_sample_id'));
  const expanded = inRange(stageRowsOf('expansions', 'e', 'seed_sample_id', 's.id', 'status, seed_sample_id'));
  const sql = {
    probe: `SELECT p.outcome AS key, count(*)::int AS n ${probed} GROUP BY 1`,
    judge: `SELECT j.verdict AS key, count(*)::int AS n ${judged} GROUP BY 1
            UNION ALL SELECT 'relabeled', count(*)::int ${judged} AND j.corrected_sample_id IS NOT NULL`,
    expand: `SELECT e.status AS key, count(*)::int AS n ${expanded} GROUP BY 1
             UNION ALL SELECT 'seeds', count(DISTINCT e.seed_sample_id)::int ${expanded}`,
  }[input.stage];
  // In key order, so a batch's result (and the stage's totals folded from it) reads the same on every run.
  const { rows } = await q.query<{ key: string; n: number }>(
    `SELECT key, n FROM (${sql}) counts ORDER BY key COLLATE "C"`,
    [input.loopName, input.iteration, input.afterSeq, input.lastSeq],
  );
  return Object.fromEntries(rows.map((r) => [r.key, r.n]));
}
