import type { Queryable } from '../tx.js';
import type { ErrorVerdict, ExpansionStatus } from '../../core/vocabulary.js';
import type { SeqRange } from '../../core/inputs.js';
import { type BatchItem, insertStageRows, type ProducedBy, stageRowsOf, type StageKey } from './stage-batches.js';

export interface ExpansionSeed extends BatchItem {
  verdict: ErrorVerdict;
  errorAnalysis: string | null;
  correctedSampleId: string | null;
  parsedCallsJson: string | null;
  rawOutput: string;
  /** The expansion slots (0..k-1) already recorded for this seed. */
  doneK: number[];
}

/** Error seeds (consensus PRED_WRONG / LABEL_WRONG) in the range with fewer than `k` expansions recorded. */
export async function pendingExpansionSeeds(
  q: Queryable,
  input: StageKey & SeqRange & { k: number; limit: number },
): Promise<ExpansionSeed[]> {
  const { rows } = await q.query<{
    seq: string;
    sample_id: string;
    verdict: ErrorVerdict;
    error_analysis: string | null;
    corrected_sample_id: string | null;
    parsed_calls: string | null;
    raw_output: string;
    done_k: number[];
  }>(
    `SELECT s.seq, j.sample_id, j.verdict, j.error_analysis, j.corrected_sample_id, p.parsed_calls::text AS parsed_calls, p.raw_output,
            coalesce((SELECT array_agg(e.k ORDER BY e.k) FROM expansions e
                      WHERE e.loop_name = j.loop_name AND e.iteration = j.iteration AND e.seed_sample_id = j.sample_id), '{}') AS done_k
     FROM samples s ${stageRowsOf('judgements', 'j', 'sample_id', 's.id')}
     ${stageRowsOf('probe_results', 'p', 'sample_id', 's.id')}
     WHERE s.seq > $3::bigint AND s.seq <= $4::bigint AND j.verdict IN ('pred_wrong', 'label_wrong') AND j.consensus
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

export interface ExpansionRow extends ProducedBy {
  seedSampleId: string;
  k: number;
  status: ExpansionStatus;
  sampleId: string | null;
  scenarioFocus: string;
  attempts: number;
  rawOutput: string | null;
  rejectionReason: string | null;
  /** The validation judge's prompt version; null when the LLM tier was skipped (`expand.validate: false`). */
  validatorPromptVersion: string | null;
  // The generator's sampling as sent (migration 0008); `promptVersion` is the generator's prompt.
  temperature: number;
  topP: number;
  topK: number;
  presencePenalty: number;
  maxTokens: number;
}

/** Writes expansion slots; a slot already recorded (a retried batch) is kept as first written. */
export const insertExpansions = (q: Queryable, key: StageKey, rows: readonly ExpansionRow[]): Promise<number> =>
  insertStageRows(q, 'expansions', key, rows, 'seed_sample_id, k');

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

/** A loop's expansion slots by status, over all its iterations. */
export async function countExpansionsByStatus(
  q: Queryable,
  loopName: string,
): Promise<{ status: ExpansionStatus; n: number }[]> {
  const { rows } = await q.query<{ status: ExpansionStatus; n: number }>(
    'SELECT status, count(*)::int AS n FROM expansions WHERE loop_name = $1::text GROUP BY status ORDER BY status',
    [loopName],
  );
  return rows;
}
