import { ApplicationFailure } from '@temporalio/activity';
import { ErrorType } from '../../core/errors.js';
import type { ModelRole } from '../../core/vocabulary.js';
import { EndpointPool } from './endpoint-pool.js';
import { createHttpTransport, type HttpTransport } from './http-fetch.js';

/** The servers of one model role as a loop names them; without `baseUrls` the worker's defaults for the role apply. */
export interface ModelEndpoints {
  baseUrls?: string[] | undefined;
  /** In-flight requests per server. */
  maxConcurrency: number;
}

/**
 * One endpoint pool per (role, servers, cap), created on first use and shared by every activity of the worker, so the
 * per-server cap holds across concurrent batches. The API keys (one per role) and the default servers come from the
 * worker's environment, never from a workflow (a key would land in history).
 */
export class LlmRegistry {
  private readonly pools = new Map<string, EndpointPool>();
  /** An injected fetch (tests), else undefined: the pools then use {@link transport}. */
  private readonly fetch: typeof fetch | undefined;
  private readonly transport: HttpTransport;

  constructor(
    private readonly options: {
      /** The bearer token per role's servers (vLLM `--api-key`); a role without one sends none. */
      apiKeys?: Partial<Record<ModelRole, string>>;
      timeoutMs?: number;
      fetch?: typeof fetch;
      defaultBaseUrls?: Partial<Record<ModelRole, string[]>>;
    } = {},
  ) {
    this.fetch = options.fetch;
    this.transport = createHttpTransport();
  }

  /** The API key a role's model servers get as a bearer token (vLLM `--api-key`), if the worker has one for it. */
  apiKeyFor(role: ModelRole): string | undefined {
    return this.options.apiKeys?.[role];
  }

  /** The headers that carry a role's key on requests made without the OpenAI client (deployment, health). */
  authHeaders(role: ModelRole): Record<string, string> {
    const key = this.apiKeyFor(role);
    return key ? { authorization: `Bearer ${key}` } : {};
  }

  /** The servers a role's calls go to: the loop's own, else the worker's defaults; neither is a config error. */
  baseUrlsFor(role: ModelRole, baseUrls: readonly string[] | undefined): string[] {
    const urls = baseUrls && baseUrls.length > 0 ? baseUrls : this.options.defaultBaseUrls?.[role];
    if (!urls || urls.length === 0) {
      throw ApplicationFailure.nonRetryable(
        `no ${role} model servers: set models.${role}.baseUrls in the loop config or LOOPTOOL_${role.toUpperCase()}_BASE_URLS on the worker`,
        ErrorType.ConfigInvalid,
      );
    }
    return [...urls];
  }

  pool(role: ModelRole, endpoints: ModelEndpoints): EndpointPool {
    const baseUrls = this.baseUrlsFor(role, endpoints.baseUrls);
    const key = `${role}|${endpoints.maxConcurrency}|${baseUrls.join(',')}`;
    let pool = this.pools.get(key);
    if (!pool) {
      const apiKey = this.apiKeyFor(role);
      pool = new EndpointPool({
        role,
        endpoints: baseUrls.map((baseURL) => ({ baseURL, maxConcurrency: endpoints.maxConcurrency })),
        ...(apiKey ? { apiKey } : {}),
        ...(this.options.timeoutMs ? { timeoutMs: this.options.timeoutMs } : {}),
        ...(this.fetch ? { fetch: this.fetch } : { transport: this.transport }),
      });
      this.pools.set(key, pool);
    }
    return pool;
  }
}
