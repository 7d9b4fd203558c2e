import type OpenAI from 'openai';
import { withRequestSignal } from './abort.js';
import type { Endpoint } from './endpoint-pool.js';

/** A chat completion's body as it came: the parsed JSON, unchecked, and the text it was parsed from. */
export interface CompletionBody {
  body: unknown;
  text: string;
}

/**
 * One chat completion whose body is read here, not by openai-node: the client would hand back a body served as
 * `text/html` (a proxy's error page with status 200) as a string, which looks like a reply that does not fit, and it
 * keeps no text of what it parsed. Here the text is kept (it is stored with a reply that does not fit the schema), and
 * a body that is not JSON at all, or cut off, throws the SyntaxError that `toApplicationFailure` maps to a retryable
 * failure: such a body says nothing about the request. HTTP errors are thrown as the client throws them; the request
 * goes out through the endpoint's {@link Endpoint.post} (the client's per-request work was a third of a probe's CPU).
 */
export async function requestCompletion(
  endpoint: Endpoint,
  params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
  signal: AbortSignal,
): Promise<CompletionBody> {
  if (!endpoint.post) {
    // Its own linked signal: the client leaves a listener on the one it is given (openai-node#1811).
    const text = await withRequestSignal(signal, async (linked) =>
      (await endpoint.client.chat.completions.create(params, { signal: linked }).asResponse()).text(),
    );
    return { body: JSON.parse(text) as unknown, text };
  }
  // Joined as the client's `buildURL` joins a base URL and a path.
  const base = endpoint.client.baseURL;
  const url = `${base}${base.endsWith('/') ? '' : '/'}chat/completions`;
  const text = await endpoint.post(url, JSON.stringify(params), signal);
  return { body: JSON.parse(text) as unknown, text };
}
