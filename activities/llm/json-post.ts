import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { type HttpTransport, RequestTimeoutError, webHeaders } from './http-fetch.js';

/**
 * POSTs a JSON body to `url` and resolves with the text of a 2xx answer. Failures are the OpenAI client's own errors,
 * made as it makes them, so callers and `toApplicationFailure` cannot tell the two apart: `APIError.generate` (what
 * the client's `makeStatusError` returns) for any other status, with the body's JSON or text and the headers (retry-after);
 * `APIUserAbortError` when `signal` aborted; `APIConnectionTimeoutError` after the pool's timeout; `APIConnectionError`
 * with the cause for anything else on the wire.
 */
export type JsonPost = (url: string, body: string, signal: AbortSignal | undefined) => Promise<string>;

/**
 * The JSON POST of one endpoint: the chat completions of every stage go through it instead of
 * `client.chat.completions.create(...).asResponse()`. Per request the client built its options, headers and URL, a
 * logging summary, an AbortController and a timer, and (through `fetch`) web Request/Response/Headers objects: about a
 * third of a probe worker's CPU at zero model latency. Here a request is one node:http call on the transport's
 * keep-alive agent. With a `fetch` of its own (tests that see or shape HTTP traffic), requests go through that.
 */
export function createJsonPost(options: {
  apiKey: string | undefined;
  timeoutMs: number;
  transport: HttpTransport | undefined;
  fetch: typeof fetch | undefined;
}): JsonPost {
  const { timeoutMs } = options;
  const headers: Record<string, string> = {
    accept: 'application/json',
    'content-type': 'application/json',
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
  };
  const send =
    options.fetch || !options.transport
      ? viaFetch(options.fetch ?? fetch, headers, timeoutMs)
      : viaTransport(options.transport, headers, timeoutMs);
  return async (url, body, signal) => {
    if (signal?.aborted) throw new APIUserAbortError();
    let answer: Answer;
    try {
      answer = await send(url, body, signal);
    } catch (err) {
      // As openai-node's makeRequest: the caller's abort first, then a timeout (its own or the socket's), else the
      // connection failed.
      if (signal?.aborted) throw new APIUserAbortError();
      const error = err instanceof Error ? err : new Error(String(err));
      const timedOut =
        err instanceof RequestTimeoutError ||
        error.name === 'AbortError' ||
        /timed? ?out/i.test(String(error) + ('cause' in error ? String(error.cause) : ''));
      if (timedOut) throw new APIConnectionTimeoutError();
      throw new APIConnectionError({ cause: error });
    }
    if (answer.status >= 200 && answer.status < 300) return answer.text;
    let json: unknown;
    try {
      json = JSON.parse(answer.text);
    } catch {
      json = undefined;
    }
    throw APIError.generate(answer.status, json as object, json ? undefined : answer.text, answer.headers());
  };
}

interface Answer {
  status: number;
  text: string;
  headers(): Headers;
}

/** The body as `Response.text()` reads it: UTF-8, a leading byte order mark dropped. */
function bodyText(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function viaTransport(
  transport: HttpTransport,
  headers: Record<string, string>,
  timeoutMs: number,
): (url: string, body: string, signal: AbortSignal | undefined) => Promise<Answer> {
  return async (url, body, signal) => {
    const response = await transport.request(url, { method: 'POST', headers, body, signal, timeoutMs });
    return {
      status: response.status,
      text: response.status === 204 || response.status === 304 ? '' : bodyText(response.body),
      headers: () => webHeaders(response.headers),
    };
  };
}

function viaFetch(
  fetchImpl: typeof fetch,
  headers: Record<string, string>,
  timeoutMs: number,
): (url: string, body: string, signal: AbortSignal | undefined) => Promise<Answer> {
  return async (url, body, signal) => {
    const controller = new AbortController();
    const abort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', abort, { once: true });
    const timer = setTimeout(() => controller.abort(new RequestTimeoutError(timeoutMs)), timeoutMs);
    try {
      const response = await fetchImpl.call(undefined, url, {
        method: 'POST',
        headers,
        body,
        signal: controller.signal,
      });
      const text = await response.text();
      return { status: response.status, text, headers: () => response.headers };
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    }
  };
}
