import type { CallPurpose, ModelRole } from '../../core/vocabulary.js';
import type { ModelCallRow } from '../../db/queries/model-calls.js';
import { MODEL_SERVER, toApplicationFailure } from '../failures.js';
import type { Endpoint, EndpointPool } from './endpoint-pool.js';
import { completeStructured, type StructuredRequest, type StructuredResult } from './structured.js';

/** Tokens one model call used. */
export interface ModelUsage {
  promptTokens: number;
  completionTokens: number;
}

/** What a model call was for, and for whom: the ledger's key and columns. */
export interface CallOf {
  purpose: CallPurpose;
  role: ModelRole;
  model: string;
  loopName: string;
  iteration: number;
  /** What makes this call unique within its purpose, loop and iteration (sample id, vote, attempt …). */
  key: readonly (string | number)[];
}

/**
 * The model calls of one activity, as ledger rows. The call key is a pure function of what the call was for, so a
 * retried activity that repeats a call records it once (`model_calls.call_key` is unique).
 */
export class Ledger {
  readonly rows: ModelCallRow[] = [];

  record(
    call: CallOf,
    outcome: { endpoint: string; usage?: ModelUsage | undefined; latencyMs: number; ok: boolean },
  ): void {
    this.rows.push({
      callKey: [call.purpose, call.loopName, call.iteration, ...call.key].join(':'),
      loopName: call.loopName,
      iteration: call.iteration,
      stage: call.purpose,
      role: call.role,
      model: call.model,
      endpoint: outcome.endpoint,
      promptTokens: outcome.usage?.promptTokens ?? 0,
      completionTokens: outcome.usage?.completionTokens ?? 0,
      latencyMs: outcome.latencyMs,
      ok: outcome.ok,
    });
  }

  /** Takes the rows recorded so far (for one page's write), leaving the ledger empty. */
  drain(): ModelCallRow[] {
    return this.rows.splice(0, this.rows.length);
  }
}

/**
 * One model call on the next free server of a pool, with its failures classified for Temporal's retry policy (the
 * context names what the call was for and the server, so a failure says where it happened).
 */
export function callModel<T>(
  pool: EndpointPool,
  signal: AbortSignal,
  what: string,
  fn: (endpoint: Endpoint) => Promise<T>,
): Promise<T> {
  return pool.withEndpoint(async (endpoint) => {
    try {
      return await fn(endpoint);
    } catch (err) {
      throw toApplicationFailure(err, `${what} on ${endpoint.baseURL}`, MODEL_SERVER);
    }
  }, signal);
}

/** Where one activity's model calls are recorded, and what aborts them (the activity's cancellation signal). */
export interface CallContext {
  ledger: Ledger;
  signal: AbortSignal;
}

/**
 * One structured-output call (judge vote, generation, validation) on the next free server of `pool`: failures
 * classified, the call recorded in the ledger under `call` whether its reply fits the schema or not.
 */
export function structuredCall<T>(
  pool: EndpointPool,
  context: CallContext,
  call: CallOf,
  what: string,
  request: Omit<StructuredRequest<T>, 'model' | 'signal'>,
): Promise<StructuredResult<T>> {
  return callModel(pool, context.signal, what, async (endpoint) => {
    const reply = await completeStructured(endpoint, { ...request, model: call.model, signal: context.signal });
    context.ledger.record(call, {
      endpoint: endpoint.baseURL,
      usage: reply.usage,
      latencyMs: reply.latencyMs,
      ok: reply.ok,
    });
    return reply;
  });
}
