/**
 * Faults on request: rules that make the next matching model requests slow, rate-limited, failing, hanging, cut off,
 * answered with a body that is not JSON, or answered with a completion of the wrong shape, so retry, error mapping and
 * response validation are tested against the HTTP behaviour a real server (or a proxy in front of it) shows.
 */
import { z } from 'zod';
import { ModelRole } from '../core/vocabulary.js';

export const FAULT_KINDS = [
  'latency',
  'rate_limit',
  'server_error',
  'timeout',
  'truncated',
  /** 200 with an HTML error page, as a proxy in front of the server answers: not JSON, so the client retries. */
  'garbage',
  /** A normal completion whose `usage.prompt_tokens` is the string "lots": JSON of the wrong shape, recorded as data. */
  'bad_usage',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export { ModelRole };

/** One fault rule. Without `count` it applies until cleared; with it, to the next `count` matching requests. */
export const FaultRule = z.object({
  role: ModelRole.optional(),
  /** Only requests for this model name. */
  model: z.string().min(1).optional(),
  kind: z.enum(FAULT_KINDS),
  count: z.number().int().positive().optional(),
  /** Delay before answering (kind `latency`). @default 1000 */
  latencyMs: z.number().int().nonnegative().optional(),
  /** The `retry-after` header of a 429 (kind `rate_limit`). @default 1 */
  retryAfterSeconds: z.number().nonnegative().optional(),
});
export type FaultRule = z.infer<typeof FaultRule>;

/** What `POST /sim/faults` accepts: one rule, a list, or `{rules: [...]}`. */
export const FaultRequest = z.union([FaultRule, z.array(FaultRule), z.object({ rules: z.array(FaultRule) })]);

/** Rules with their remaining counts; the first rule that matches a request is used (and counted down). */
export class FaultInjector {
  private rules: { rule: FaultRule; remaining: number }[] = [];
  private readonly fired: Record<FaultKind, number> = {
    latency: 0,
    rate_limit: 0,
    server_error: 0,
    timeout: 0,
    truncated: 0,
    garbage: 0,
    bad_usage: 0,
  };

  constructor(rules: readonly FaultRule[] = []) {
    this.add(rules);
  }

  add(rules: readonly FaultRule[]): void {
    for (const rule of rules) this.rules.push({ rule, remaining: rule.count ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.rules = [];
  }

  /** The rules still active, with what is left of their counts. */
  list(): (FaultRule & { remaining: number | null })[] {
    return this.rules.map(({ rule, remaining }) => ({
      ...rule,
      remaining: Number.isFinite(remaining) ? remaining : null,
    }));
  }

  /** How many times each kind has fired. */
  counts(): Record<FaultKind, number> {
    return { ...this.fired };
  }

  /** The fault for a request, if any (and counts it). */
  take(role: ModelRole, model: string): FaultRule | undefined {
    if (this.rules.length === 0) return undefined;
    const index = this.rules.findIndex(
      ({ rule }) =>
        (rule.role === undefined || rule.role === role) && (rule.model === undefined || rule.model === model),
    );
    if (index < 0) return undefined;
    const entry = this.rules[index] as { rule: FaultRule; remaining: number };
    entry.remaining--;
    if (entry.remaining <= 0) this.rules.splice(index, 1);
    this.fired[entry.rule.kind]++;
    return entry.rule;
  }
}
