import type pg from 'pg';
import type { ModelRole } from '../core/vocabulary.js';
import { loadPrompts, type PromptTemplate } from './llm/prompts.js';
import { LlmRegistry } from './llm/registry.js';

/** Everything activities need from the outside world, built once by the worker and passed in (never imported). */
export interface ActivityDeps {
  pool: pg.Pool;
  llm: LlmRegistry;
  prompts: Map<string, PromptTemplate>;
  /** Where exported training data and checkpoints go; shared with the trainer (same machine or a shared volume). */
  artifactsDir: string;
  /** A `looptool reward serve` that trainers can reach (LOOPTOOL_REWARD_URL); absent: each recipe starts its own. */
  rewardUrl?: string;
}

/**
 * The standard dependencies: model clients with the worker's API keys and default servers per role, prompt templates
 * read once.
 */
export function createActivityDeps(input: {
  pool: pg.Pool;
  artifactsDir: string;
  /** Model servers per role for loops whose config names none (the worker's LOOPTOOL_<ROLE>_BASE_URLS). */
  defaultBaseUrls?: Partial<Record<ModelRole, string[]>>;
  /** The bearer token per role's model servers (the worker's LOOPTOOL_<ROLE>_API_KEY, else LOOPTOOL_LLM_API_KEY). */
  apiKeys?: Partial<Record<ModelRole, string>>;
  llmTimeoutMs?: number;
  rewardUrl?: string;
}): ActivityDeps {
  return {
    pool: input.pool,
    artifactsDir: input.artifactsDir,
    ...(input.rewardUrl ? { rewardUrl: input.rewardUrl } : {}),
    llm: new LlmRegistry({
      ...(input.apiKeys ? { apiKeys: input.apiKeys } : {}),
      ...(input.llmTimeoutMs ? { timeoutMs: input.llmTimeoutMs } : {}),
      ...(input.defaultBaseUrls ? { defaultBaseUrls: input.defaultBaseUrls } : {}),
    }),
    prompts: loadPrompts(),
  };
}
