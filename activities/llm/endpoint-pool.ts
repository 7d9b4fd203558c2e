import OpenAI from 'openai';
import type { ModelRole } from '../../core/vocabulary.js';
import { onAbort } from './abort.js';
import type { HttpTransport } from './http-fetch.js';
import { createJsonPost, type JsonPost } from './json-post.js';

export interface EndpointConfig {
  /** OpenAI-compatible base URL, e.g. vLLM's `http://host:8000/v1`. */
  baseURL: string;
  /** In-flight requests this server gets from this process; vLLM batches them itself. */
  maxConcurrency: number;
}

export interface EndpointPoolOptions {
  role: ModelRole;
  endpoints: readonly EndpointConfig[];
  /** Sent as the bearer token on every request (vLLM `--api-key`); absent: no Authorization header at all. */
  apiKey?: string;
  /** Per-request timeout. @unit milliseconds @default 120000 */
  timeoutMs?: number;
  /** Injected in tests that need to see or shape HTTP traffic; every request of the pool then goes through it. */
  fetch?: typeof fetch;
  /** The HTTP the pool's JSON POSTs use when no `fetch` is injected (the registry's keep-alive agents). */
  transport?: HttpTransport;
}

export interface Endpoint {
  baseURL: string;
  client: OpenAI;
  /**
   * A JSON POST to this server without the client's per-request work, failing with the client's errors (every pool's
   * endpoint has one; an endpoint made by hand around a client alone goes through the client).
   */
  post?: JsonPost;
}

interface Slot extends Endpoint {
  max: number;
  inFlight: number;
}

/**
 * The servers of one model role, used round robin with a cap on in-flight requests per server (vLLM slows down and
 * times out when flooded, vllm#6009). Each server gets one OpenAI client with `maxRetries: 0`: Temporal owns retries,
 * and client retries inside an activity would hide failures from it and double-count time.
 */
export class EndpointPool {
  readonly role: ModelRole;
  private readonly slots: Slot[];
  private next = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(options: EndpointPoolOptions) {
    if (options.endpoints.length === 0) throw new Error(`no ${options.role} endpoints configured`);
    this.role = options.role;
    const timeoutMs = options.timeoutMs ?? 120_000;
    this.slots = options.endpoints.map((endpoint) => {
      const client = new OpenAI({
        baseURL: endpoint.baseURL,
        // The client insists on a key; without one the header is dropped, so a keyless worker sends no made-up token.
        apiKey: options.apiKey ?? 'none',
        ...(options.apiKey ? {} : { defaultHeaders: { Authorization: null } }),
        maxRetries: 0,
        timeout: timeoutMs,
        ...(options.fetch ? { fetch: options.fetch } : options.transport ? { fetch: options.transport.fetch } : {}),
      });
      return {
        baseURL: endpoint.baseURL,
        max: Math.max(1, endpoint.maxConcurrency),
        inFlight: 0,
        client,
        post: createJsonPost({
          apiKey: options.apiKey,
          timeoutMs,
          transport: options.transport,
          fetch: options.fetch,
        }),
      };
    });
  }

  get endpoints(): readonly string[] {
    return this.slots.map((slot) => slot.baseURL);
  }

  /** Total in-flight requests across the pool (for tests and progress reports). */
  get inFlight(): number {
    return this.slots.reduce((sum, slot) => sum + slot.inFlight, 0);
  }

  /**
   * Runs `fn` with the next server that has a free slot, waiting for one when all are busy. `signal` (an activity's
   * cancellation signal) stops the wait.
   */
  async withEndpoint<T>(fn: (endpoint: Endpoint) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const slot = await this.acquire(signal);
    try {
      return await fn(slot);
    } finally {
      slot.inFlight--;
      this.waiters.shift()?.();
    }
  }

  private async acquire(signal?: AbortSignal): Promise<Slot> {
    for (;;) {
      signal?.throwIfAborted();
      for (let i = 0; i < this.slots.length; i++) {
        const slot = this.slots[(this.next + i) % this.slots.length]!;
        if (slot.inFlight < slot.max) {
          this.next = (this.next + i + 1) % this.slots.length;
          slot.inFlight++;
          return slot;
        }
      }
      await new Promise<void>((resolve, reject) => {
        const stopWaiting = signal
          ? onAbort(signal, () => {
              const index = this.waiters.indexOf(wake);
              if (index >= 0) this.waiters.splice(index, 1);
              reject(signal.reason ?? new Error('aborted'));
            })
          : undefined;
        const wake = () => {
          stopWaiting?.();
          resolve();
        };
        this.waiters.push(wake);
      });
    }
  }
}
