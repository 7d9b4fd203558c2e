import type { Queryable } from '../tx.js';

/** Everything a loop's report shows, read in a few grouped queries (client/report.ts renders it). */
export interface LoopReportData {
  /** Accuracy by iteration (0 = the base model) and category, per eval set. */
  accuracy: {
    iteration: number;
    evalSet: string;
    category: string;
    correct: number;
    total: number;
    accuracy: number;
  }[];
  /** Dataset composition by role per iteration (the paper's Table 3). */
  composition: { iteration: number; ref: string; total: number; byRole: Record<string, number> }[];
  /** The probe's outcomes per iteration (GCP): match, mismatch, parse_error, too_long. */
  probes: { iteration: number; outcome: string; n: number }[];
  judgements: { iteration: number; verdict: string; n: number; corrected: number }[];
  expansions: { iteration: number; status: string; n: number }[];
  calls: {
    iteration: number;
    stage: string;
    calls: number;
    promptTokens: number;
    completionTokens: number;
    latencySeconds: number;
  }[];
  training: { iteration: number; status: string; seconds: number | null; checkpoint: string | null }[];
}

export async function loopReportData(q: Queryable, loopName: string): Promise<LoopReportData> {
  const rows = async <T extends object>(sql: string) =>
    (await q.query<T & Record<string, unknown>>(sql, [loopName])).rows;
  const [accuracy, composition, probes, judgements, expansions, calls, training] = [
    await rows<{
      iteration: number;
      eval_set: string;
      category: string;
      correct: number;
      total: number;
      accuracy: number;
    }>(
      'SELECT iteration, eval_set, category, correct, total, accuracy FROM evaluations WHERE loop_name = $1::text ORDER BY iteration, eval_set, category',
    ),
    await rows<{
      iteration: number;
      dataset: string;
      version: number;
      member_count: number;
      counts_by_role: Record<string, number> | null;
    }>(
      'SELECT iteration, dataset, version, member_count, counts_by_role FROM dataset_versions WHERE loop_name = $1::text ORDER BY iteration',
    ),
    await rows<{ iteration: number; outcome: string; n: number }>(
      'SELECT iteration, outcome, count(*)::int AS n FROM probe_results WHERE loop_name = $1::text GROUP BY 1, 2 ORDER BY 1, 2',
    ),
    await rows<{ iteration: number; verdict: string; n: number; corrected: number }>(
      `SELECT iteration, verdict, count(*)::int AS n, count(corrected_sample_id)::int AS corrected FROM judgements
       WHERE loop_name = $1::text GROUP BY 1, 2 ORDER BY 1, 2`,
    ),
    await rows<{ iteration: number; status: string; n: number }>(
      'SELECT iteration, status, count(*)::int AS n FROM expansions WHERE loop_name = $1::text GROUP BY 1, 2 ORDER BY 1, 2',
    ),
    await rows<{
      iteration: number;
      stage: string;
      calls: number;
      prompt_tokens: string;
      completion_tokens: string;
      latency_ms: string;
    }>(
      `SELECT iteration, stage, count(*)::int AS calls, sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,
              sum(latency_ms) AS latency_ms FROM model_calls WHERE loop_name = $1::text GROUP BY 1, 2 ORDER BY 1, 2`,
    ),
    await rows<{ iteration: number; status: string; seconds: number | null; checkpoint_uri: string | null }>(
      `SELECT iteration, status, extract(epoch FROM finished_at - submitted_at)::float8 AS seconds, checkpoint_uri
       FROM training_runs WHERE loop_name = $1::text ORDER BY iteration`,
    ),
  ];
  return {
    accuracy: accuracy.map((r) => ({
      iteration: r.iteration,
      evalSet: r.eval_set,
      category: r.category,
      correct: r.correct,
      total: r.total,
      accuracy: r.accuracy,
    })),
    composition: composition.map((r) => ({
      iteration: r.iteration,
      ref: `${r.dataset}@${r.version}`,
      total: r.member_count,
      byRole: r.counts_by_role ?? {},
    })),
    probes: probes.map((r) => ({ iteration: r.iteration, outcome: r.outcome, n: r.n })),
    judgements: judgements.map((r) => ({ iteration: r.iteration, verdict: r.verdict, n: r.n, corrected: r.corrected })),
    expansions: expansions.map((r) => ({ iteration: r.iteration, status: r.status, n: r.n })),
    calls: calls.map((r) => ({
      iteration: r.iteration,
      stage: r.stage,
      calls: r.calls,
      promptTokens: Number(r.prompt_tokens),
      completionTokens: Number(r.completion_tokens),
      latencySeconds: Number(r.latency_ms) / 1000,
    })),
    training: training.map((r) => ({
      iteration: r.iteration,
      status: r.status,
      seconds: r.seconds,
      checkpoint: r.checkpoint_uri,
    })),
  };
}
