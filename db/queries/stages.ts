import type { Queryable } from '../tx.js';

/** A sample to work on in a stage batch: its storage key (the batch cursor) and its content id. */
export interface BatchItem {
  seq: number;
  sampleId: string;
}

export interface StageKey {
  loopName: string;
  iteration: number;
}

/** A batch is the seq range (afterSeq, lastSeq] of the rows a stage works through, in seq order. */
export interface SeqRange {
  afterSeq: number;
  lastSeq: number;
}

/**
 * Members of a version in the range that have no probe result yet for this iteration. Reading "what is left" from
 * the results table, rather than trusting a cursor, is what makes a retried probe resume after its last written sample
 * and never probe a sample twice.
 */
export async function pendingProbeItems(q: Queryable, input: StageKey & SeqRange & { versionId: number; limit: number }): Promise<BatchItem[]> {
  const { rows } = await q.query<{ seq: string; sample_id: string }>(
    `SELECT m.sample_seq AS seq, s.id AS sample_id
     FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     WHERE m.version_id = $1::bigint AND m.sample_seq > $2::bigint AND m.sample_seq <= $3::bigint
       AND NOT EXISTS (SELECT 1 FROM probe_results p WHERE p.loop_name = $4::text AND p.iteration = $5::int AND p.sample_id = s.id)
     ORDER BY m.sample_seq LIMIT $6::int`,
    [input.versionId, input.afterSeq, input.lastSeq, input.loopName, input.iteration, input.limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), sampleId: r.sample_id }));
}

export interface ProbeResultRow {
  sampleId: string;
  outcome: 'match' | 'mismatch' | 'parse_error';
  rawOutput: string;
  /** Canonical JSON of the parsed calls, or null when the output did not parse. */
  parsedCallsJson: string | null;
  errorType: string | null;
  error: string | null;
  meanLogprob: number | null;
  perplexity: number | null;
  promptTokens: number | null;
  completionTokens: number | null;
  latencyMs: number | null;
  model: string;
  promptVersion: string;
}

/** Writes probe results; a row that exists (a retried batch) is kept as first written. Returns rows inserted. */
export async function insertProbeResults(q: Queryable, key: StageKey, rows: readonly ProbeResultRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await q.query(
    `INSERT INTO probe_results (loop_name, iteration, sample_id, outcome, raw_output, parsed_calls, error_type, error,
       mean_logprob, perplexity, prompt_tokens, completion_tokens, latency_ms, model, prompt_version)
     SELECT $1::text, $2::int, * FROM unnest($3::text[], $4::text[], $5::text[], $6::json[], $7::text[], $8::text[],
       $9::float8[], $10::float8[], $11::int[], $12::int[], $13::int[], $14::text[], $15::text[])
     ON CONFLICT (loop_name, iteration, sample_id) DO NOTHING`,
    [
      key.loopName,
      key.iteration,
      rows.map((r) => r.sampleId),
      rows.map((r) => r.outcome),
      rows.map((r) => r.rawOutput),
      rows.map((r) => r.parsedCallsJson),
      rows.map((r) => r.errorType),
      rows.map((r) => r.error),
      rows.map((r) => r.meanLogprob),
      rows.map((r) => r.perplexity),
      rows.map((r) => r.promptTokens),
      rows.map((r) => r.completionTokens),
      rows.map((r) => r.latencyMs),
      rows.map((r) => r.model),
      rows.map((r) => r.promptVersion),
    ],
  );
  return result.rowCount ?? 0;
}

export interface ModelCallRow {
  callKey: string;
  loopName: string | null;
  iteration: number | null;
  stage: 'probe' | 'judge' | 'expand' | 'validate' | 'evaluate';
  role: 'policy' | 'judge' | 'generator';
  model: string;
  endpoint: string;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  ok: boolean;
}

/** Appends to the model-call ledger; a call key already recorded (a retried activity) is not counted twice. */
export async function recordModelCalls(q: Queryable, rows: readonly ModelCallRow[]): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `INSERT INTO model_calls (call_key, loop_name, iteration, stage, role, model, endpoint, prompt_tokens, completion_tokens, latency_ms, ok)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[], $10::int[], $11::bool[])
     ON CONFLICT (call_key) DO NOTHING`,
    [
      rows.map((r) => r.callKey),
      rows.map((r) => r.loopName),
      rows.map((r) => r.iteration),
      rows.map((r) => r.stage),
      rows.map((r) => r.role),
      rows.map((r) => r.model),
      rows.map((r) => r.endpoint),
      rows.map((r) => r.promptTokens),
      rows.map((r) => r.completionTokens),
      rows.map((r) => r.latencyMs),
      rows.map((r) => r.ok),
    ],
  );
}

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
             WHERE p.loop_name = $2::text AND p.iteration = $3::int AND p.outcome <> 'match'`,
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

export interface JudgeItem extends BatchItem {
  outcome: 'mismatch' | 'parse_error';
  parsedCallsJson: string | null;
  rawOutput: string;
  error: string | null;
}

/** This iteration's mismatches and parse errors in the range that have no judgement yet (resume = what is left). */
export async function pendingJudgeItems(q: Queryable, input: StageKey & SeqRange & { limit: number }): Promise<JudgeItem[]> {
  const { rows } = await q.query<{ seq: string; sample_id: string; outcome: 'mismatch' | 'parse_error'; parsed_calls: string | null; raw_output: string; error: string | null }>(
    `SELECT s.seq, p.sample_id, p.outcome, p.parsed_calls::text AS parsed_calls, p.raw_output, p.error
     FROM probe_results p JOIN samples s ON s.id = p.sample_id
     WHERE p.loop_name = $1::text AND p.iteration = $2::int AND p.outcome <> 'match'
       AND s.seq > $3::bigint AND s.seq <= $4::bigint
       AND NOT EXISTS (SELECT 1 FROM judgements j WHERE j.loop_name = p.loop_name AND j.iteration = p.iteration AND j.sample_id = p.sample_id)
     ORDER BY s.seq LIMIT $5::int`,
    [input.loopName, input.iteration, input.afterSeq, input.lastSeq, input.limit],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    sampleId: r.sample_id,
    outcome: r.outcome,
    parsedCallsJson: r.parsed_calls,
    rawOutput: r.raw_output,
    error: r.error,
  }));
}

export interface JudgementRow {
  sampleId: string;
  verdict: 'pred_wrong' | 'label_wrong' | 'both_correct' | 'both_wrong' | 'judge_failed';
  consensus: boolean;
  voteCount: number;
  votes: unknown[];
  errorAnalysis: string | null;
  correctApproach: string | null;
  correctedSampleId: string | null;
  model: string;
  promptVersion: string;
}

/** Writes judgements; an existing row (a retried batch) is kept as first written. */
export async function insertJudgements(q: Queryable, key: StageKey, rows: readonly JudgementRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await q.query(
    `INSERT INTO judgements (loop_name, iteration, sample_id, verdict, consensus, vote_count, votes, error_analysis,
       correct_approach, corrected_sample_id, model, prompt_version)
     SELECT $1::text, $2::int, * FROM unnest($3::text[], $4::text[], $5::bool[], $6::int[], $7::jsonb[], $8::text[],
       $9::text[], $10::text[], $11::text[], $12::text[])
     ON CONFLICT (loop_name, iteration, sample_id) DO NOTHING`,
    [
      key.loopName,
      key.iteration,
      rows.map((r) => r.sampleId),
      rows.map((r) => r.verdict),
      rows.map((r) => r.consensus),
      rows.map((r) => r.voteCount),
      rows.map((r) => JSON.stringify(r.votes)),
      rows.map((r) => r.errorAnalysis),
      rows.map((r) => r.correctApproach),
      rows.map((r) => r.correctedSampleId),
      rows.map((r) => r.model),
      rows.map((r) => r.promptVersion),
    ],
  );
  return result.rowCount ?? 0;
}

export interface ExpansionSeed extends BatchItem {
  verdict: 'pred_wrong' | 'label_wrong';
  errorAnalysis: string | null;
  correctedSampleId: string | null;
  parsedCallsJson: string | null;
  rawOutput: string;
  /** The expansion slots (0..k-1) already recorded for this seed. */
  doneK: number[];
}

/** Error seeds (consensus PRED_WRONG / LABEL_WRONG) in the range with fewer than `k` expansions recorded. */
export async function pendingExpansionSeeds(q: Queryable, input: StageKey & SeqRange & { k: number; limit: number }): Promise<ExpansionSeed[]> {
  const { rows } = await q.query<{
    seq: string; sample_id: string; verdict: 'pred_wrong' | 'label_wrong'; error_analysis: string | null;
    corrected_sample_id: string | null; parsed_calls: string | null; raw_output: string; done_k: number[];
  }>(
    `SELECT s.seq, j.sample_id, j.verdict, j.error_analysis, j.corrected_sample_id, p.parsed_calls::text AS parsed_calls, p.raw_output,
            coalesce((SELECT array_agg(e.k ORDER BY e.k) FROM expansions e
                      WHERE e.loop_name = j.loop_name AND e.iteration = j.iteration AND e.seed_sample_id = j.sample_id), '{}') AS done_k
     FROM judgements j JOIN samples s ON s.id = j.sample_id
     JOIN probe_results p ON p.loop_name = j.loop_name AND p.iteration = j.iteration AND p.sample_id = j.sample_id
     WHERE j.loop_name = $1::text AND j.iteration = $2::int AND j.verdict IN ('pred_wrong', 'label_wrong') AND j.consensus
       AND s.seq > $3::bigint AND s.seq <= $4::bigint
       AND (SELECT count(*) FROM expansions e WHERE e.loop_name = j.loop_name AND e.iteration = j.iteration AND e.seed_sample_id = j.sample_id) < $5::int
     ORDER BY s.seq LIMIT $6::int`,
    [input.loopName, input.iteration, input.afterSeq, input.lastSeq, input.k, input.limit],
  );
  return rows.map((r) => ({
    seq: Number(r.seq),
    sampleId: r.sample_id,
    verdict: r.verdict,
    errorAnalysis: r.error_analysis,
    correctedSampleId: r.corrected_sample_id,
    parsedCallsJson: r.parsed_calls,
    rawOutput: r.raw_output,
    doneK: r.done_k,
  }));
}

export interface ExpansionRow {
  seedSampleId: string;
  k: number;
  status: 'accepted' | 'rejected_rule' | 'rejected_judge' | 'duplicate' | 'generation_failed';
  sampleId: string | null;
  scenarioFocus: string;
  attempts: number;
  rawOutput: string | null;
  rejectionReason: string | null;
  model: string;
  promptVersion: string;
}

export async function insertExpansions(q: Queryable, key: StageKey, rows: readonly ExpansionRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const result = await q.query(
    `INSERT INTO expansions (loop_name, iteration, seed_sample_id, k, status, sample_id, scenario_focus, attempts, raw_output,
       rejection_reason, model, prompt_version)
     SELECT $1::text, $2::int, * FROM unnest($3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[],
       $10::text[], $11::text[], $12::text[])
     ON CONFLICT (loop_name, iteration, seed_sample_id, k) DO NOTHING`,
    [
      key.loopName,
      key.iteration,
      rows.map((r) => r.seedSampleId),
      rows.map((r) => r.k),
      rows.map((r) => r.status),
      rows.map((r) => r.sampleId),
      rows.map((r) => r.scenarioFocus),
      rows.map((r) => r.attempts),
      rows.map((r) => r.rawOutput),
      rows.map((r) => r.rejectionReason),
      rows.map((r) => r.model),
      rows.map((r) => r.promptVersion),
    ],
  );
  return result.rowCount ?? 0;
}

/**
 * Which of these samples the loop has already (EDDE's dedup before acceptance): in one of its dataset versions, or
 * accepted as an expansion. Other loops' samples do not count: loops are independent experiments that merely share
 * content-addressed rows.
 */
export async function samplesKnownToLoop(q: Queryable, loopName: string, ids: readonly string[]): Promise<Set<string>> {
  if (ids.length === 0) return new Set();
  const { rows } = await q.query<{ id: string }>(
    `SELECT u.id FROM unnest($2::text[]) AS u(id)
     WHERE EXISTS (SELECT 1 FROM expansions e WHERE e.loop_name = $1::text AND e.sample_id = u.id AND e.status = 'accepted')
        OR EXISTS (SELECT 1 FROM samples s JOIN dataset_members m ON m.sample_seq = s.seq JOIN dataset_versions v ON v.id = m.version_id
                   WHERE s.id = u.id AND v.loop_name = $1::text)`,
    [loopName, ids],
  );
  return new Set(rows.map((r) => r.id));
}

export interface EvaluationRow {
  evalSet: string;
  category: string;
  total: number;
  correct: number;
  accuracy: number;
}

/** Writes (or rewrites, for a re-run evaluation) per-category accuracy rows. */
export async function upsertEvaluations(q: Queryable, key: StageKey, rows: readonly EvaluationRow[]): Promise<void> {
  if (rows.length === 0) return;
  await q.query(
    `INSERT INTO evaluations (loop_name, iteration, eval_set, category, total, correct, accuracy)
     SELECT $1::text, $2::int, * FROM unnest($3::text[], $4::text[], $5::int[], $6::int[], $7::float8[])
     ON CONFLICT (loop_name, iteration, eval_set, category)
     DO UPDATE SET total = excluded.total, correct = excluded.correct, accuracy = excluded.accuracy, created_at = now()`,
    [key.loopName, key.iteration, rows.map((r) => r.evalSet), rows.map((r) => r.category), rows.map((r) => r.total), rows.map((r) => r.correct), rows.map((r) => r.accuracy)],
  );
}

export async function getEvaluations(q: Queryable, key: StageKey & { evalSet?: string }): Promise<EvaluationRow[]> {
  const { rows } = await q.query<{ eval_set: string; category: string; total: number; correct: number; accuracy: number }>(
    `SELECT eval_set, category, total, correct, accuracy FROM evaluations
     WHERE loop_name = $1::text AND iteration = $2::int AND ($3::text IS NULL OR eval_set = $3::text) ORDER BY eval_set, category`,
    [key.loopName, key.iteration, key.evalSet ?? null],
  );
  return rows.map((r) => ({ evalSet: r.eval_set, category: r.category, total: r.total, correct: r.correct, accuracy: r.accuracy }));
}

export interface TrainingRunRow {
  backend: string;
  jobKey: string;
  externalId: string | null;
  datasetVersionId: number;
  baseCheckpoint: string | null;
  status: 'submitted' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  checkpointUri: string | null;
  metrics: Record<string, number>;
}

/** Records (or updates) the training run of an iteration; the job key never changes once written. */
export async function upsertTrainingRun(q: Queryable, key: StageKey, row: TrainingRunRow): Promise<void> {
  await q.query(
    `INSERT INTO training_runs (loop_name, iteration, backend, job_key, external_id, dataset_version_id, base_checkpoint, status, checkpoint_uri, metrics, finished_at)
     VALUES ($1::text, $2::int, $3::text, $4::text, $5::text, $6::bigint, $7::text, $8::text, $9::text, $10::jsonb,
             CASE WHEN $8::text IN ('succeeded', 'failed', 'cancelled') THEN now() END)
     ON CONFLICT (loop_name, iteration) DO UPDATE SET external_id = coalesce(excluded.external_id, training_runs.external_id),
       status = excluded.status, checkpoint_uri = coalesce(excluded.checkpoint_uri, training_runs.checkpoint_uri),
       metrics = excluded.metrics, finished_at = excluded.finished_at`,
    [key.loopName, key.iteration, row.backend, row.jobKey, row.externalId, row.datasetVersionId, row.baseCheckpoint, row.status, row.checkpointUri, JSON.stringify(row.metrics)],
  );
}

export type BatchedStage = 'probe' | 'judge' | 'expand';

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

export async function getStageBatch(q: Queryable, input: StageKey & { stage: BatchedStage; batchNo: number }): Promise<SeqRange> {
  const { rows } = await q.query<{ after_seq: string; last_seq: string }>(
    'SELECT after_seq, last_seq FROM stage_batches WHERE loop_name = $1::text AND iteration = $2::int AND stage = $3::text AND batch_no = $4::int',
    [input.loopName, input.iteration, input.stage, input.batchNo],
  );
  if (!rows[0]) throw new Error(`no batch ${input.batchNo} planned for ${input.stage} of ${input.loopName} iteration ${input.iteration}`);
  return { afterSeq: Number(rows[0].after_seq), lastSeq: Number(rows[0].last_seq) };
}

/**
 * What a stage has recorded for the rows of one batch, counted from the tables: a batch's result then says the same
 * whether it ran once or was retried after writing part of its work.
 */
export async function batchCounts(q: Queryable, input: StageKey & SeqRange & { stage: BatchedStage }): Promise<Record<string, number>> {
  const sql = {
    probe: `SELECT p.outcome AS key, count(*)::int AS n FROM probe_results p JOIN samples s ON s.id = p.sample_id
            WHERE p.loop_name = $1::text AND p.iteration = $2::int AND s.seq > $3::bigint AND s.seq <= $4::bigint GROUP BY 1`,
    judge: `SELECT j.verdict AS key, count(*)::int AS n FROM judgements j JOIN samples s ON s.id = j.sample_id
            WHERE j.loop_name = $1::text AND j.iteration = $2::int AND s.seq > $3::bigint AND s.seq <= $4::bigint GROUP BY 1
            UNION ALL
            SELECT 'relabeled', count(*)::int FROM judgements j JOIN samples s ON s.id = j.sample_id
            WHERE j.loop_name = $1::text AND j.iteration = $2::int AND s.seq > $3::bigint AND s.seq <= $4::bigint AND j.corrected_sample_id IS NOT NULL`,
    expand: `SELECT e.status AS key, count(*)::int AS n FROM expansions e JOIN samples s ON s.id = e.seed_sample_id
             WHERE e.loop_name = $1::text AND e.iteration = $2::int AND s.seq > $3::bigint AND s.seq <= $4::bigint GROUP BY 1
             UNION ALL
             SELECT 'seeds', count(DISTINCT e.seed_sample_id)::int FROM expansions e JOIN samples s ON s.id = e.seed_sample_id
             WHERE e.loop_name = $1::text AND e.iteration = $2::int AND s.seq > $3::bigint AND s.seq <= $4::bigint`,
  }[input.stage];
  const { rows } = await q.query<{ key: string; n: number }>(sql, [input.loopName, input.iteration, input.afterSeq, input.lastSeq]);
  return Object.fromEntries(rows.map((r) => [r.key, r.n]));
}
