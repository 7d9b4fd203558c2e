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
