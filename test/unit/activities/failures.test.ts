import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { describe, expect, test } from 'vitest';
import {
  isDatabaseOutage,
  retryAfterMs,
  toApplicationFailure,
  toDatabaseFailure,
} from '../../../activities/failures.js';
import { ErrorType } from '../../../core/errors.js';

const httpError = (status: number, headers: Record<string, string> = {}) =>
  APIError.generate(status, { error: { message: `status ${status}` } }, undefined, new Headers(headers));

describe('toApplicationFailure', () => {
  test('429 is retryable and carries the server retry-after as nextRetryDelay', () => {
    const failure = toApplicationFailure(httpError(429, { 'retry-after': '7' }), 'judge') as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({
      type: ErrorType.ModelServerUnavailable,
      nonRetryable: false,
      nextRetryDelay: 7000,
    });
    expect(failure.message).toMatch(/^judge: HTTP 429/);
  });

  test('retry-after-ms wins over retry-after; a date works too; nonsense is ignored', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    expect(
      retryAfterMs(new Headers({ 'retry-after': new Date(10_000 + 3_000).toUTCString() }), 10_000),
    ).toBeGreaterThanOrEqual(2_000);
    expect(retryAfterMs(new Headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(retryAfterMs(new Headers({ 'retry-after': '999999' }))).toBeUndefined();
  });

  test.each([500, 502, 503, 408, 409])('HTTP %i is retryable without a fixed delay', (status) => {
    const failure = toApplicationFailure(httpError(status), 'probe') as ApplicationFailure;
    expect(failure).toMatchObject({ type: ErrorType.ModelServerUnavailable, nonRetryable: false });
    expect(failure.nextRetryDelay).toBeUndefined();
  });

  test.each([400, 401, 403, 404, 422])('HTTP %i is a configuration problem: non-retryable', (status) => {
    expect(toApplicationFailure(httpError(status), 'probe')).toMatchObject({
      type: ErrorType.ModelRequestRejected,
      nonRetryable: true,
    });
  });

  test('connection failures and timeouts are retryable', () => {
    expect(toApplicationFailure(new APIConnectionError({ message: 'ECONNREFUSED' }), 'probe')).toMatchObject({
      type: ErrorType.ModelConnectionFailed,
      nonRetryable: false,
    });
    expect((toApplicationFailure(new APIConnectionTimeoutError(), 'probe') as Error).message).toMatch(/timed out/);
  });

  test('an aborted request becomes a CancelledFailure, so Temporal records the activity as cancelled, not failed', () => {
    expect(toApplicationFailure(new APIUserAbortError(), 'probe')).toBeInstanceOf(CancelledFailure);
  });

  test('a truncated response body (JSON cut off) is retryable; unknown errors pass through untouched', () => {
    expect(toApplicationFailure(new SyntaxError('Unterminated string in JSON at position 432'), 'judge')).toMatchObject(
      {
        type: ErrorType.ModelServerUnavailable,
        nonRetryable: false,
        message: expect.stringMatching(/malformed response body/),
      },
    );
    const bug = new TypeError('x is undefined');
    expect(toApplicationFailure(bug, 'probe')).toBe(bug);
  });
});

describe('database outages', () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.5:5432'), { code: 'ECONNREFUSED' });
  const shutdown = Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
  const starting = Object.assign(new Error('the database system is starting up'), { code: '57P03' });
  const dropped = new Error('Connection terminated unexpectedly');
  const badQuery = Object.assign(new Error('invalid input syntax for type integer: "lots"'), { code: '22P02' });

  test('connection failures and server restarts are outages; a refused query is not', () => {
    for (const err of [refused, shutdown, starting, dropped]) expect(isDatabaseOutage(err), err.message).toBe(true);
    expect(isDatabaseOutage(badQuery)).toBe(false);
    expect(isDatabaseOutage('ECONNREFUSED')).toBe(false);
  });

  test('an outage becomes a typed retryable failure naming the server, without credentials', () => {
    const failure = toDatabaseFailure(shutdown, 'db.internal:5433') as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure.type).toBe(ErrorType.DatabaseUnavailable);
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toBe(
      'PostgreSQL at db.internal:5433 (DATABASE_URL): terminating connection due to administrator command',
    );
    // Anything else passes through untouched, to be classified (or fail) as it is.
    expect(toDatabaseFailure(badQuery, 'db.internal:5433')).toBe(badQuery);
  });
});
