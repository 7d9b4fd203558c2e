import type { Queryable } from '../tx.js';
import type { CallPurpose, ModelRole } from '../../core/vocabulary.js';

export interface ModelCallRow {
  callKey: string;
  loopName: string | null;
  iteration: number | null;
  stage: CallPurpose;
  role: ModelRole;
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

