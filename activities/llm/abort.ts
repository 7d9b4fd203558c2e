/**
 * Runs one request with its own AbortSignal, linked to the activity's: cancelling the activity aborts the request, and
 * the link is removed when the request ends. Passing the activity's signal straight to the OpenAI client would leave
 * one listener behind per request (openai-node#1811), which over a long batch makes every new listener slower.
 */
export async function withRequestSignal<T>(
  parent: AbortSignal | undefined,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  if (!parent) return fn(controller.signal);
  parent.throwIfAborted();
  const abort = () => controller.abort(parent.reason);
  parent.addEventListener('abort', abort, { once: true });
  try {
    return await fn(controller.signal);
  } finally {
    parent.removeEventListener('abort', abort);
  }
}

/** The callbacks waiting on each signal, behind the one listener {@link onAbort} puts on it. */
const waiting = new WeakMap<AbortSignal, { callbacks: Set<() => void>; listener: () => void }>();

/**
 * Calls `fn` when `signal` aborts, until the returned function is called. Every request of an activity waits on its one
 * signal: one listener per signal stands in for all of them, added when the first waits and removed when the last is
 * done (so none is left behind). An EventTarget listener added and removed per request cost a probe about 10 µs a
 * sample. `fn` is not called for a signal that aborted before (callers check `signal.aborted` first, as with
 * addEventListener).
 */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  let entry = waiting.get(signal);
  if (!entry) {
    const callbacks = new Set<() => void>();
    const listener = () => {
      waiting.delete(signal);
      for (const callback of [...callbacks]) callback();
    };
    entry = { callbacks, listener };
    waiting.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const { callbacks, listener } = entry;
  callbacks.add(fn);
  return () => {
    if (!callbacks.delete(fn) || callbacks.size > 0 || waiting.get(signal)?.callbacks !== callbacks) return;
    waiting.delete(signal);
    signal.removeEventListener('abort', listener);
  };
}
