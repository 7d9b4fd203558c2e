import type { Queryable } from '../tx.js';
import { insertRows } from './unnest.js';
import type { StageKey } from './stage-batches.js';

export interface EvaluationRow {
  evalSet: string;
  category: string;
  total: number;
  correct: number;
  accuracy: number;
}

/** Writes (or rewrites, for a re-run evaluation) per-category accuracy rows. */
export async function upsertEvaluations(q: Queryable, key: StageKey, rows: readonly EvaluationRow[]): Promise<void> {
  await insertRows(q, 'evaluations', rows, {
    shared: { loop_name: key.loopName, iteration: key.iteration },
    onConflict:
      'ON CONFLICT (loop_name, iteration, eval_set, category) DO UPDATE SET total = excluded.total, correct = excluded.correct, accuracy = excluded.accuracy, created_at = now()',
  });
}

export async function getEvaluations(q: Queryable, key: StageKey & { evalSet?: string }): Promise<EvaluationRow[]> {
  const { rows } = await q.query<{
    eval_set: string;
    category: string;
    total: number;
    correct: number;
    accuracy: number;
  }>(
    `SELECT eval_set, category, total, correct, accuracy FROM evaluations
     WHERE loop_name = $1::text AND iteration = $2::int AND ($3::text IS NULL OR eval_set = $3::text) ORDER BY eval_set, category`,
    [key.loopName, key.iteration, key.evalSet ?? null],
  );
  return rows.map((r) => ({
    evalSet: r.eval_set,
    category: r.category,
    total: r.total,
    correct: r.correct,
    accuracy: r.accuracy,
  }));
}
