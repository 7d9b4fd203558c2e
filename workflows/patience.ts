import { ActivityFailure, ApplicationFailure, isCancellation, sleep, TimeoutFailure } from '@temporalio/workflow';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../core/errors.js';
import type { Waiting } from '../core/messages.js';

/** Failure types that say the work itself cannot succeed, whatever its retry policy said about them. */
const FATAL_TYPES = new Set<string>([...NON_RETRYABLE_ERROR_TYPES, ErrorType.TrainingJobFailed]);

/**
 * Whether an activity's failure was an outage (worth waiting out) rather than a verdict on the work: timeouts (a dead
 * worker, a hung server) and retryable application failures (connection refused, 5xx, 429, a database restart) are;
 * non-retryable failures, the fatal types and cancellations are not.
 */
export function isTransient(err: unknown): err is ActivityFailure {
  if (!(err instanceof ActivityFailure) || isCancellation(err)) return false;
  const cause = err.cause;
  if (cause instanceof TimeoutFailure) return true;
  if (cause instanceof ApplicationFailure) return !cause.nonRetryable && !FATAL_TYPES.has(cause.type ?? '');
  return false;
}

/** The message people read: the application failure's own (it names the server), else the activity failure's. */
function reasonOf(err: ActivityFailure): string {
  const cause = err.cause;
  const message =
    cause instanceof TimeoutFailure ? `${cause.message} (${cause.timeoutType ?? 'timeout'})` : cause?.message;
  return (message ?? err.message).split('\n')[0]!.slice(0, 500);
}

/**
 * Activity calls that outlive outages. Each activity retries a few times under its own retry policy; when those are
 * spent on a transient failure, {@link Patience.call} records what the loop waits for (and since when), sleeps with
 * capped exponential backoff, and calls again: for as long as it takes. Non-transient failures pass through, so only a
 * verdict on the work (invalid config, a refused request, a failed training job) fails a stage. Several calls may wait
 * at once (a stage's parallel batches); `onChange` gets the list whenever it changes.
 */
export class Patience {
  private readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly maxBackoffSeconds: number,
    private readonly onChange: (waiting: Waiting[]) => void = () => {},
  ) {}

  /** What is being waited for now, oldest first. */
  list(): Waiting[] {
    return [...this.waiting.values()].sort((a, b) => a.since.localeCompare(b.since));
  }

  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let rounds = 0;
    for (;;) {
      try {
        const value = await fn();
        if (this.waiting.delete(what)) this.onChange(this.list());
        return value;
      } catch (err) {
        if (!isTransient(err)) {
          if (this.waiting.delete(what)) this.onChange(this.list());
          throw err;
        }
        rounds++;
        const since = this.waiting.get(what)?.since ?? new Date().toISOString(); // workflow time: deterministic
        this.waiting.set(what, { what, reason: reasonOf(err), since, rounds });
        this.onChange(this.list());
        // 5 s, 10 s, 20 s … up to the cap: a short outage costs little time, a week-long one little history.
        await sleep(Math.min(5 * 2 ** (rounds - 1), this.maxBackoffSeconds) * 1000);
      }
    }
  }
}
