import type { Queryable } from '../tx.js';
import type { JudgeVerdict } from '../../core/vocabulary.js';
import type { SeqRange } from '../../core/inputs.js';
import {
  type BatchItem,
  insertStageRows,
  JUDGEABLE_PROBE_RESULT,
  ONE_LOOKUP_PER_ROW,
  type ProducedBy,
  stageRowsOf,
  type StageKey,
} from './stage-batches.js';

export interface JudgeItem extends BatchItem {
  outcome: 'mismatch' | 'parse_error';
  parsedCallsJson: string | null;
  rawOutput: string;
  error: string | null;
}

/** This iteration's mismatches and parse errors in the range that have no judgement yet (resume = what is left). */
export async function pendingJudgeItems(
  q: Queryable,
  input: StageKey & SeqRange & { limit: number },
): Promise<JudgeItem[]> {
  const { rows } = await q.query<{
    seq: string;
    sample_id: string;
    outcome: 'mismatch' | 'parse_error';
    parsed_calls: string | null;
    raw_output: string;
    error: string | null;
  }>(
    `SELECT s.seq, p.sample_id, p.outcome, p.parsed_calls::text AS parsed_calls, p.raw_output, p.error
     FROM samples s ${stageRowsOf('probe_results', 'p', 'sample_id', 's.id')}
     WHERE s.seq > $3::bigint AND s.seq <= $4::bigint AND ${JUDGEABLE_PROBE_RESULT}
       AND NOT EXISTS (SELECT 1 FROM judgements j
                       WHERE j.loop_name = p.loop_name AND j.iteration = p.iteration AND j.sample_id = p.sample_id
                       ${ONE_LOOKUP_PER_ROW})
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

export interface JudgementRow extends ProducedBy {
  sampleId: string;
  verdict: JudgeVerdict;
  consensus: boolean;
  voteCount: number;
  votes: unknown[];
  errorAnalysis: string | null;
  correctApproach: string | null;
  correctedSampleId: string | null;
}

/** Writes judgements; an existing row (a retried batch) is kept as first written. */
export const insertJudgements = (q: Queryable, key: StageKey, rows: readonly JudgementRow[]): Promise<number> =>
  insertStageRows(q, 'judgements', key, rows, 'sample_id');

/** Labels a loop's judge corrected, over all its iterations. */
export async function countCorrectedLabels(q: Queryable, loopName: string): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM judgements WHERE loop_name = $1::text AND corrected_sample_id IS NOT NULL',
    [loopName],
  );
  return rows[0]?.n ?? 0;
}
