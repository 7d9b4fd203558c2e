import type { Queryable } from '../tx.js';
import { insertRows } from './unnest.js';
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
  await insertRows(q, 'model_calls', rows, { onConflict: 'ON CONFLICT (call_key) DO NOTHING' });
}
