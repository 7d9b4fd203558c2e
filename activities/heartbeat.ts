import { Context } from '@temporalio/activity';

/** How often a running activity tells Temporal it is alive (the SDK throttles what it sends). @unit milliseconds */
const KEEPALIVE_HEARTBEAT_MS = 1_000;

/**
 * Runs `fn` while heartbeating `details()` every second. The heartbeat is how Temporal notices a dead worker within
 * the heartbeat timeout (instead of the start-to-close timeout, minutes later) and how a cancelled or terminated loop
 * reaches an activity that is waiting on a slow server or a database; without it, only activities that happen to
 * finish a page now and then would be reachable.
 */
export async function keepHeartbeating<T>(details: () => unknown, fn: () => Promise<T>): Promise<T> {
  const context = Context.current();
  const timer = setInterval(() => context.heartbeat(details()), KEEPALIVE_HEARTBEAT_MS);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}
