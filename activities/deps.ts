import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { loadPrompts, type PromptTemplate } from './llm/prompts.js';
import { LlmRegistry } from './llm/registry.js';

/** Everything activities need from the outside world, built once in worker/main.ts and passed in (never imported). */
export interface ActivityDeps {
  pool: pg.Pool;
  llm: LlmRegistry;
  prompts: Map<string, PromptTemplate>;
  /** Where exported training data and checkpoints go; shared with the trainer (same machine or a shared volume). */
  artifactsDir: string;
}

/** `<root>/.data/artifacts`, the default artifacts folder. */
export const DEFAULT_ARTIFACTS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '.data', 'artifacts');

/** The standard dependencies: model clients keyed by the worker's API key, prompt templates read once. */
export function createActivityDeps(input: { pool: pg.Pool; llmApiKey?: string; llmTimeoutMs?: number; artifactsDir?: string }): ActivityDeps {
  return {
    pool: input.pool,
    artifactsDir: input.artifactsDir ?? DEFAULT_ARTIFACTS_DIR,
    llm: new LlmRegistry({ ...(input.llmApiKey ? { apiKey: input.llmApiKey } : {}), ...(input.llmTimeoutMs ? { timeoutMs: input.llmTimeoutMs } : {}) }),
    prompts: loadPrompts(),
  };
}
