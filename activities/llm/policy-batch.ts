import { APIError } from 'openai';
import type { PolicyPromptMessage } from '../../core/formats/policy-prompt.js';
import type { ModelUsage } from './calls.js';
import { routeUrl } from './completion-body.js';
import type { Endpoint } from './endpoint-pool.js';
import { PER_SAMPLE_REJECTION, type PolicyReply, readPolicyCompletion, replyOfChoice } from './policy-chat.js';

/**
 * Greedy answers to several prompts in one request: vLLM's batch route, `POST /v1/chat/completions/batch`, takes the
 * fields of a chat completion with `messages` a list of conversations, and answers one chat completion whose choices are
 * the conversations' answers, indexed 0…N-1 in request order, each generated as the single route would (vLLM
 * `OpenAIServingChatBatch`). Its `usage` is the sum over the conversations. The probe sends many short prompts to the
 * policy; per request, each side's HTTP, JSON and scheduling work was about half of the CPU of a probe at zero model
 * latency, and this pays it once per batch.
 */

export interface PolicyBatchRequest {
  model: string;
  /** Each conversation as {@link policyPrompt} renders it. */
  prompts: readonly (readonly PolicyPromptMessage[])[];
  maxTokens: number;
  logprobs: boolean;
  signal: AbortSignal;
}

export type PolicyBatchAnswer =
  /** One reply per prompt, in order (each `kind: 'reply'`, without usage of its own); `usage` is the batch's. */
  | { kind: 'replies'; replies: (PolicyReply & { kind: 'reply' })[]; usage: ModelUsage | undefined; latencyMs: number }
  /** The server has no batch route (404, 405); it is remembered, and asked one prompt at a time from then on. */
  | { kind: 'no_batch_route'; latencyMs: number }
  /**
   * The server refused the batch (400, 413, 422: one prompt it cannot serve fails them all) or answered something that
   * is not one completion per prompt: each prompt is to be asked on its own, where its answer is that sample's data.
   */
  | { kind: 'ask_one_by_one'; why: string; latencyMs: number };

/** Servers (base URLs) that answered the batch route with 404 or 405, for this process's life. */
const withoutBatchRoute = new Set<string>();

/** Whether `endpoint` may serve the batch route: not known to lack it, and reached without the client (see below). */
export function mayHaveBatchRoute(endpoint: Endpoint): boolean {
  // An endpoint made around a client alone (no JSON POST of its own) has no way to send a route the client lacks.
  return endpoint.post !== undefined && !withoutBatchRoute.has(endpoint.baseURL);
}

/**
 * Asks the policy to answer each prompt greedily (temperature 0, no OpenAI `tools`: see `policyChat`), all in one
 * request. A body that is not JSON (cut off, an HTML error page) throws a SyntaxError, and other failures are thrown as
 * they come; callers classify them with the server they called (see `callModel`).
 */
export async function policyChatBatch(endpoint: Endpoint, request: PolicyBatchRequest): Promise<PolicyBatchAnswer> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  request.signal.throwIfAborted();
  if (!endpoint.post) return { kind: 'no_batch_route', latencyMs: 0 };
  let text: string;
  try {
    text = await endpoint.post(
      routeUrl(endpoint, 'chat/completions/batch'),
      JSON.stringify({
        model: request.model,
        messages: request.prompts,
        temperature: 0,
        max_tokens: request.maxTokens,
        ...(request.logprobs ? { logprobs: true } : {}),
      }),
      request.signal,
    );
  } catch (err) {
    if (err instanceof APIError && (err.status === 404 || err.status === 405)) {
      withoutBatchRoute.add(endpoint.baseURL);
      return { kind: 'no_batch_route', latencyMs: elapsed() };
    }
    if (err instanceof APIError && typeof err.status === 'number' && PER_SAMPLE_REJECTION.has(err.status))
      return { kind: 'ask_one_by_one', why: `HTTP ${err.status}: ${err.message}`, latencyMs: elapsed() };
    throw err;
  }
  const latencyMs = elapsed();
  const read = readPolicyCompletion(text);
  if (!read.ok) return { kind: 'ask_one_by_one', why: read.error, latencyMs };
  const { choices, usage } = read.completion;
  // vLLM answers every conversation, in order; anything else cannot be matched to the prompts with certainty.
  if (choices.length !== request.prompts.length || choices.some((choice, at) => choice.index !== at))
    return {
      kind: 'ask_one_by_one',
      why: `${choices.length} choices for ${request.prompts.length} conversations, or not indexed in order`,
      latencyMs,
    };
  return {
    kind: 'replies',
    replies: choices.map((choice, at) => replyOfChoice(choice, read.logprobs[at] ?? null, undefined, latencyMs)),
    usage: usage ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } : undefined,
    latencyMs,
  };
}
