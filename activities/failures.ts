import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { ErrorType } from '../core/errors.js';

/**
 * An HTTP answer that is not what was asked for, from a server looptool talks to without the OpenAI client (the
 * trainer's job API, vLLM's adapter endpoints). Its status decides whether a retry can help.
 */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers?: Headers,
  ) {
    super(message);
    this.name = 'HttpStatusError';
  }
}

/** The failure types one kind of server's failures are reported under (retry policies key on them). */
export interface ServerFailureTypes {
  /** Overloaded or briefly down (429, 5xx, 408, 409): retryable, after its retry-after when given. */
  unavailable: ErrorType;
  /** It refused the request itself (other 4xx): non-retryable, the request or the config must change. */
  rejected: ErrorType;
  /** No answer at all (refused, reset, timed out): retryable. */
  connection: ErrorType;
}

/** Model servers: vLLM's OpenAI-compatible API for chat and its adapter endpoints for deployment. */
export const MODEL_SERVER: ServerFailureTypes = {
  unavailable: ErrorType.ModelServerUnavailable,
  rejected: ErrorType.ModelRequestRejected,
  connection: ErrorType.ModelConnectionFailed,
};

/** A training backend's job API. */
export const TRAINER: ServerFailureTypes = {
  unavailable: ErrorType.TrainerUnavailable,
  rejected: ErrorType.TrainerRequestRejected,
  connection: ErrorType.TrainerUnavailable,
};

/** What a 401 from a model server means here: the worker sends no key, or not the one the server was started with. */
const UNAUTHORIZED_HINT =
  " (the server wants another API key: set the worker's LOOPTOOL_<ROLE>_API_KEY, or LOOPTOOL_LLM_API_KEY for every role, to the server's --api-key)";

/** Statuses worth retrying, as openai-node's own `shouldRetry` decides: timeout, conflict, rate limit, server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/**
 * The delay a server asked for: `retry-after-ms` (milliseconds), else `retry-after` in seconds or as an HTTP date.
 * Undefined when absent or unreasonable (over an hour), so Temporal's backoff applies instead.
 */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (!headers) return undefined;
  const pick = (): number | undefined => {
    const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
    if (Number.isFinite(ms)) return ms;
    const raw = headers.get('retry-after');
    if (!raw) return undefined;
    const seconds = Number.parseFloat(raw);
    if (Number.isFinite(seconds)) return seconds * 1000;
    const date = Date.parse(raw);
    return Number.isFinite(date) ? date - now : undefined;
  };
  const ms = pick();
  return ms !== undefined && ms >= 0 && ms <= 3_600_000 ? Math.ceil(ms) : undefined;
}

/** Connection-level failures of Node's fetch (undici wraps them as `TypeError: fetch failed` with a coded cause). */
function isConnectionFailure(err: unknown): boolean {
  const code =
    (err as { code?: unknown; cause?: { code?: unknown } } | null)?.cause?.code ??
    (err as { code?: unknown } | null)?.code;
  return (
    (err instanceof TypeError && err.message === 'fetch failed') ||
    (typeof code === 'string' &&
      /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EAI_AGAIN|EPIPE|UND_ERR_\w+)$/.test(code))
  );
}

/**
 * The one classifier of failed calls to the servers looptool talks to (model servers, trainer APIs, deployment
 * endpoints): maps any error to the ApplicationFailure Temporal should see. Clients run without retries of their own,
 * so this is the one place that decides: 429/5xx/408/409 and connection failures are retryable (with the server's
 * retry-after as `nextRetryDelay`), other 4xx are non-retryable, a truncated body is retryable. An aborted request
 * becomes a CancelledFailure, so Temporal records the activity as cancelled. Unknown errors (bugs) pass through.
 */
export function toApplicationFailure(err: unknown, context: string, types: ServerFailureTypes = MODEL_SERVER): unknown {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  // The SDK reports an activity as cancelled (not failed) only when it ends with a CancelledFailure.
  if (err instanceof APIUserAbortError || (err instanceof Error && err.name === 'AbortError')) {
    return new CancelledFailure(`${context}: request aborted because the activity was cancelled`);
  }
  if (err instanceof SyntaxError) {
    // A body cut off mid-JSON (a proxy timeout, a server crash mid-response) says nothing about the request: retry it.
    return ApplicationFailure.create({
      message: `${context}: malformed response body: ${err.message}`,
      type: types.unavailable,
      cause: err,
    });
  }
  if (err instanceof APIConnectionTimeoutError || err instanceof APIConnectionError || isConnectionFailure(err)) {
    const timedOut = err instanceof APIConnectionTimeoutError;
    const reason = timedOut
      ? 'request timed out'
      : `connection failed: ${(err as Error).message}${(err as { cause?: Error }).cause?.message ? ` (${(err as { cause?: Error }).cause?.message})` : ''}`;
    return ApplicationFailure.create({ message: `${context}: ${reason}`, type: types.connection, cause: err as Error });
  }
  const status = err instanceof APIError || err instanceof HttpStatusError ? err.status : undefined;
  if (typeof status === 'number') {
    const error = err as APIError | HttpStatusError;
    const summary = `${context}: HTTP ${status}: ${error.message}${status === 401 && types === MODEL_SERVER ? UNAUTHORIZED_HINT : ''}`;
    if (isRetryableStatus(status)) {
      const delay = retryAfterMs(error.headers);
      return ApplicationFailure.create({
        message: summary,
        type: types.unavailable,
        ...(delay !== undefined ? { nextRetryDelay: delay } : {}),
        cause: error,
      });
    }
    return ApplicationFailure.create({ message: summary, type: types.rejected, nonRetryable: true, cause: error });
  }
  return err;
}

/** SQLSTATEs of a server that is going away or not taking connections (classes 08 and 57P, too many connections). */
const DATABASE_OUTAGE_STATES = /^(08\w{3}|57P0[1-3]|53300)$/;

/** Whether an error says PostgreSQL is unreachable or restarting, as opposed to a verdict on the query. */
export function isDatabaseOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (DATABASE_OUTAGE_STATES.test(code) || isConnectionFailure(err))) return true;
  // node-postgres's own messages for a connection that died or never came (no code on these).
  return /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/.test(
    err.message,
  );
}

/**
 * An activity's database outage as the failure Temporal and people see: retryable, typed, naming the server (never its
 * password): "PostgreSQL at db:5432 (DATABASE_URL): connect ECONNREFUSED …". Other errors pass through.
 */
export function toDatabaseFailure(err: unknown, address: string): unknown {
  if (err instanceof ApplicationFailure || !isDatabaseOutage(err)) return err;
  return ApplicationFailure.create({
    message: `PostgreSQL at ${address} (DATABASE_URL): ${(err as Error).message}`,
    type: ErrorType.DatabaseUnavailable,
    cause: err as Error,
  });
}
