import type OpenAI from 'openai';
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
 * failure: such a body says nothing about the request. HTTP errors are thrown by the client as before.
 */
export async function requestCompletion(
  endpoint: Endpoint,
  params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
  signal: AbortSignal,
): Promise<CompletionBody> {
  const response = await endpoint.client.chat.completions.create(params, { signal }).asResponse();
  const text = await response.text();
  return { body: JSON.parse(text) as unknown, text };
}
