import http from 'node:http';
import https from 'node:https';
import { urlToHttpOptions } from 'node:url';
import { onAbort } from './abort.js';

/** A response read whole by {@link HttpTransport.request}: status, Node's headers and the body's bytes. */
export interface RawResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface RawRequest {
  method: string;
  headers: Record<string, string>;
  body?: string | Uint8Array | undefined;
  /** Aborts the request (its reason is the error thrown, or an AbortError). */
  signal?: AbortSignal | undefined;
  /** Destroys the request with a {@link RequestTimeoutError} when the whole response has not come in time. */
  timeoutMs?: number | undefined;
}

/** A request that took longer than its `timeoutMs`; its message says "timed out", as the OpenAI client tests for. */
export class RequestTimeoutError extends Error {
  constructor(ms: number) {
    super(`request timed out after ${ms} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** HTTP for the model clients: `fetch` (what the OpenAI client takes) and `request`, the same call without web types. */
export interface HttpTransport {
  fetch: typeof fetch;
  request(url: string | URL, init: RawRequest): Promise<RawResponse>;
}

const abortError = (signal: AbortSignal): unknown =>
  signal.reason instanceof Error ? signal.reason : new DOMException('This operation was aborted', 'AbortError');

/**
 * HTTP for the model clients built on node:http with keep-alive agents. Node's built-in fetch (undici with web
 * streams) cost about half of a probe worker's CPU in profiles; a plain buffered request is enough for the JSON
 * request/response calls the OpenAI client makes (no streaming is used), and lifts probe throughput by about half.
 * `request` skips the web `Request`/`Response`/`Headers` objects as well, for the hot calls that read the body as text
 * (`json-post.ts`): building them cost another fifth of a probe worker's CPU.
 */
export function createHttpTransport(options: { maxSockets?: number } = {}): HttpTransport {
  const agents = {
    'http:': new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 }),
    'https:': new https.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 }),
  };
  // A URL string's request options, parsed once: the hot calls go to a handful of URLs thousands of times.
  const targets = new Map<string, http.RequestOptions>();
  const targetOf = (input: string | URL): http.RequestOptions => {
    if (typeof input !== 'string') return urlToHttpOptions(input);
    let target = targets.get(input);
    if (target === undefined) {
      if (targets.size >= 256) targets.clear();
      targets.set(input, (target = urlToHttpOptions(new URL(input))));
    }
    return target;
  };
  const request = (input: string | URL, init: RawRequest): Promise<RawResponse> =>
    new Promise<RawResponse>((resolve, reject) => {
      const target = targetOf(input);
      const protocol = target.protocol as keyof typeof agents;
      const signal = init.signal;
      if (signal?.aborted) return reject(abortError(signal));
      const transport = protocol === 'https:' ? https : http;
      let timer: NodeJS.Timeout | undefined;
      let stopWaiting: (() => void) | undefined;
      const settle = () => {
        stopWaiting?.();
        if (timer) clearTimeout(timer);
      };
      const outgoing = transport.request(
        { ...target, method: init.method, headers: init.headers, agent: agents[protocol] },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('error', (err) => {
            settle();
            reject(err);
          });
          response.on('end', () => {
            settle();
            resolve({
              status: response.statusCode ?? 500,
              statusText: response.statusMessage ?? '',
              headers: response.headers,
              body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks),
            });
          });
        },
      );
      if (signal) stopWaiting = onAbort(signal, () => outgoing.destroy(abortError(signal) as Error));
      if (init.timeoutMs !== undefined) {
        const ms = init.timeoutMs;
        timer = setTimeout(() => outgoing.destroy(new RequestTimeoutError(ms)), ms);
      }
      outgoing.on('error', (err) => {
        settle();
        reject(err);
      });
      const body = init.body;
      if (body === undefined || body === null) outgoing.end();
      else if (typeof body === 'string' || body instanceof Uint8Array) outgoing.end(body);
      else {
        outgoing.destroy();
        settle();
        reject(new TypeError('createHttpFetch sends string or byte bodies only'));
      }
    });

  const fetchImpl = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, key) => (headers[key] = value));
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array))
      throw new TypeError('createHttpFetch sends string or byte bodies only');
    const response = await request(url, {
      method: init.method ?? 'GET',
      headers,
      body: body ?? undefined,
      signal: init.signal ?? undefined,
    });
    return new Response(response.status === 204 || response.status === 304 ? null : response.body, {
      status: response.status,
      statusText: response.statusText,
      headers: webHeaders(response.headers),
    });
  }) as typeof fetch;
  return { fetch: fetchImpl, request };
}

/** {@link createHttpTransport}'s `fetch` alone. */
export function createHttpFetch(options: { maxSockets?: number } = {}): typeof fetch {
  return createHttpTransport(options).fetch;
}

/** Node's response headers as web `Headers` (repeated headers appended). */
export function webHeaders(headers: http.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [key, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const v of value) out.append(key, v);
    else if (value !== undefined) out.set(key, value);
  }
  return out;
}
