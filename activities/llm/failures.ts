import { ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { ErrorType } from '../../core/errors.js';

/** Statuses worth retrying, as openai-node's own `shouldRetry` decides: timeout, conflict, rate limit, server errors. */
function isRetryableStatus(status: number): boolean {
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

/**
 * Maps any error from a model call to the ApplicationFailure Temporal should see. The OpenAI client runs with
 * `maxRetries: 0`, so this is the one place that decides: 429/5xx/408/409 and connection failures are retryable (with
 * the server's retry-after as `nextRetryDelay`), other 4xx are configuration problems and non-retryable, a truncated
 * body is retryable. An aborted request becomes a CancelledFailure, so Temporal records the activity as cancelled.
 */
export function toApplicationFailure(err: unknown, context: string): unknown {
  if (err instanceof ApplicationFailure || err instanceof CancelledFailure) return err;
  // The SDK reports an activity as cancelled (not failed) only when it ends with a CancelledFailure.
  if (err instanceof APIUserAbortError) return new CancelledFailure(`${context}: request aborted because the activity was cancelled`);
  if (err instanceof SyntaxError) {
    // A body cut off mid-JSON (a proxy timeout, a server crash mid-response) says nothing about the request: retry it.
    return ApplicationFailure.create({ message: `${context}: malformed response body: ${err.message}`, type: ErrorType.ModelServerUnavailable, cause: err });
  }
  if (err instanceof APIConnectionTimeoutError || err instanceof APIConnectionError) {
    return ApplicationFailure.create({
      message: `${context}: ${err instanceof APIConnectionTimeoutError ? 'request timed out' : `connection failed: ${err.message}`}`,
      type: ErrorType.ModelConnectionFailed,
      cause: err,
    });
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const summary = `${context}: HTTP ${err.status}: ${err.message}`;
    if (isRetryableStatus(err.status)) {
      const delay = retryAfterMs(err.headers);
      return ApplicationFailure.create({
        message: summary,
        type: ErrorType.ModelServerUnavailable,
        ...(delay !== undefined ? { nextRetryDelay: delay } : {}),
        cause: err,
      });
    }
    return ApplicationFailure.create({ message: summary, type: ErrorType.ModelRequestRejected, nonRetryable: true, cause: err });
  }
  return err;
}
