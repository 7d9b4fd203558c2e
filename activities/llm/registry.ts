import { EndpointPool, type ModelRole } from './endpoint-pool.js';
import { createHttpFetch } from './http-fetch.js';

export interface ModelEndpoints {
  baseUrls: string[];
  /** In-flight requests per server. */
  maxConcurrency: number;
}

/**
 * One endpoint pool per (role, servers, cap), created on first use and shared by every activity of the worker, so the
 * per-server cap holds across concurrent batches. The API key comes from the worker's environment, never from a
 * workflow (it would land in history).
 */
export class LlmRegistry {
  private readonly pools = new Map<string, EndpointPool>();
  private readonly fetch: typeof fetch;

  constructor(private readonly options: { apiKey?: string; timeoutMs?: number; fetch?: typeof fetch } = {}) {
    this.fetch = options.fetch ?? createHttpFetch();
  }

  pool(role: ModelRole, endpoints: ModelEndpoints): EndpointPool {
    const key = `${role}|${endpoints.maxConcurrency}|${endpoints.baseUrls.join(',')}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = new EndpointPool({
        role,
        endpoints: endpoints.baseUrls.map((baseURL) => ({ baseURL, maxConcurrency: endpoints.maxConcurrency })),
        ...(this.options.apiKey ? { apiKey: this.options.apiKey } : {}),
        ...(this.options.timeoutMs ? { timeoutMs: this.options.timeoutMs } : {}),
        fetch: this.fetch,
      });
      this.pools.set(key, pool);
    }
    return pool;
  }
}
