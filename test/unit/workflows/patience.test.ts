import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  RetryState,
  TimeoutFailure,
  TimeoutType,
} from '@temporalio/common';
import { describe, expect, test } from 'vitest';
import { ErrorType } from '../../../core/errors.js';
import { isTransient } from '../../../workflows/patience.js';

/** An activity's failure as the workflow receives it once the activity's own retries are spent. */
const activityFailure = (cause: Error) =>
  new ActivityFailure('Activity task failed', 'probeBatch', '1', RetryState.MAXIMUM_ATTEMPTS_REACHED, 'worker', cause);

describe('which failures a loop waits out', () => {
  test('outages: retryable application failures of every server kind, and timeouts', () => {
    for (const type of [
      ErrorType.DatabaseUnavailable,
      ErrorType.ModelServerUnavailable,
      ErrorType.ModelConnectionFailed,
      ErrorType.TrainerUnavailable,
      'TypeError',
    ])
      expect(isTransient(activityFailure(ApplicationFailure.create({ message: 'down', type }))), type).toBe(true);
    expect(isTransient(activityFailure(new TimeoutFailure('heartbeat', undefined, TimeoutType.HEARTBEAT)))).toBe(true);
  });

  test('verdicts on the work: non-retryable failures, the fatal types, cancellations, other errors', () => {
    expect(isTransient(activityFailure(ApplicationFailure.create({ message: 'no', nonRetryable: true })))).toBe(false);
    for (const type of [
      ErrorType.ConfigInvalid,
      ErrorType.ModelRequestRejected,
      ErrorType.TrainerRequestRejected,
      ErrorType.DataNotFound,
      ErrorType.TrainingJobFailed,
    ])
      expect(isTransient(activityFailure(ApplicationFailure.create({ message: 'no', type }))), type).toBe(false);
    expect(isTransient(activityFailure(new CancelledFailure('cancelled')))).toBe(false);
    expect(isTransient(ApplicationFailure.create({ message: 'not from an activity' }))).toBe(false);
  });
});
