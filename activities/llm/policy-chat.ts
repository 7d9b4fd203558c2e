import { APIError } from 'openai';
import { policyPrompt, type PolicyPromptMessage } from '../../core/formats/policy-prompt.js';
import { canonicalJson, type JsonValue } from '../../core/json.js';
import { checkModelResponse, PolicyCompletion, rawResponseText } from '../../core/schemas/model-response.js';
import type { Sample } from '../../core/schemas/sample.js';
import type { ModelUsage } from './calls.js';
import { parseWithTokenLogprobs, requestCompletionText } from './completion-body.js';
import type { Endpoint } from './endpoint-pool.js';

/** Statuses vLLM answers for one request it cannot serve (prompt too long, bad tool schema): a fact about the sample. */
export const PER_SAMPLE_REJECTION = new Set([400, 413, 422]);

export interface PolicyChatRequest {
  model: string;
  /** The conversation and tools to show; its target is not read. */
  sample: Sample;
  /** `policyPrompt(sample)`, when the caller has rendered it already (the probe measures it first). */
  prompt?: readonly PolicyPromptMessage[];
  maxTokens: number;
  /** Ask for the generated tokens' log-probabilities (the probe's perplexity). */
  logprobs: boolean;
  signal: AbortSignal;
}

export type PolicyReply =
  | {
      kind: 'reply';
      content: string | null;
      /** OpenAI `tool_calls`, when the server parsed some anyway (the request sends no `tools`). */
      toolCalls: JsonValue[] | null;
      /** What the policy said, as stored: the tool calls' canonical JSON when there were any, else the text. */
      rawOutput: string;
      /** Each generated token's log-probability (`logprobs.content[i].logprob`), when asked for. */
      logprobs: readonly number[] | null;
      usage: ModelUsage | undefined;
      latencyMs: number;
    }
  /** The server refused this one request (400/413/422): data about the sample, not a failed call. */
  | { kind: 'rejected'; status: number; message: string; latencyMs: number }
  /**
   * The body is JSON but not a chat completion as {@link PolicyCompletion} reads it (`usage.prompt_tokens: "lots"`):
   * data about the sample, recorded with `error` (the field and its problem) and `raw` (the body's text, cut at
   * `RAW_RESPONSE_LIMIT`). Resending would get the same answer, so it is never a failed call.
   */
  | { kind: 'invalid'; error: string; raw: string; latencyMs: number };

/**
 * The policy's greedy answer to one sample, as the probe and evaluation ask for it: temperature 0, the chat of
 * {@link policyPrompt} (tools in the system prompt, calls and results as `<tool_call>` / `<tool_response>` text) and no
 * OpenAI `tools` parameter, so the server's chat template adds no second tool section and the model sees what training
 * showed it. The reply's calls come back as `<tool_call>` blocks in its text. The body is checked against
 * {@link PolicyCompletion} before any of it is used; one that does not fit comes back as `kind: 'invalid'`. A body that
 * is not JSON (cut off, an HTML error page) throws a SyntaxError, and other failures are thrown as they come; callers
 * classify them with the server they called (see `callModel`).
 */
export async function policyChat(endpoint: Endpoint, request: PolicyChatRequest): Promise<PolicyReply> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  let text: string;
  request.signal.throwIfAborted();
  try {
    // The request takes the activity's signal itself and removes its listener when it ends (Endpoint.post).
    text = await requestCompletionText(
      endpoint,
      {
        model: request.model,
        messages: (request.prompt ?? policyPrompt(request.sample)) as PolicyPromptMessage[],
        temperature: 0,
        max_tokens: request.maxTokens,
        ...(request.logprobs ? { logprobs: true } : {}),
      },
      request.signal,
    );
  } catch (err) {
    if (err instanceof APIError && typeof err.status === 'number' && PER_SAMPLE_REJECTION.has(err.status)) {
      return { kind: 'rejected', status: err.status, message: err.message, latencyMs: elapsed() };
    }
    throw err;
  }
  const read = readPolicyCompletion(text);
  if (!read.ok) return { kind: 'invalid', error: read.error, raw: rawResponseText(text), latencyMs: elapsed() };
  const { usage } = read.completion;
  // The schema requires one choice at least.
  return replyOfChoice(
    read.completion.choices[0]!,
    read.logprobs[0] ?? null,
    usage ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } : undefined,
    elapsed(),
  );
}

/** The reply of one choice of a completion that fits {@link PolicyCompletion}, with that choice's token logprobs. */
export function replyOfChoice(
  choice: PolicyCompletion['choices'][number],
  logprobs: readonly number[] | null,
  usage: ModelUsage | undefined,
  latencyMs: number,
): PolicyReply & { kind: 'reply' } {
  const message = choice.message;
  const toolCalls =
    message.tool_calls && message.tool_calls.length > 0 ? (message.tool_calls as unknown as JsonValue[]) : null;
  return {
    kind: 'reply',
    content: message.content ?? null,
    toolCalls,
    rawOutput: toolCalls ? canonicalJson(toolCalls) : (message.content ?? ''),
    logprobs,
    usage,
    latencyMs,
  };
}

/** A completion body as {@link policyChat} reads it. */
export type PolicyCompletionRead =
  | {
      ok: true;
      /** The body; a choice's `logprobs.content` may be left empty here, its values being in {@link logprobs}. */
      completion: PolicyCompletion;
      /** By choice index: the tokens' log-probabilities (`logprobs.content[i].logprob`), or null without them. */
      logprobs: (readonly number[] | null)[];
    }
  | { ok: false; error: string };

/**
 * Reads a completion body's text as `JSON.parse`, then {@link fitsPolicyCompletion} or else zod, read it, with the
 * same result for every text: a body that is not JSON throws `JSON.parse`'s SyntaxError, one that does not fit is
 * zod's error. Most bodies take {@link parseWithTokenLogprobs}, which makes no object per token; any it does not read,
 * or that do not fit, are parsed again whole, so odd bodies are read exactly as before.
 */
export function readPolicyCompletion(text: string): PolicyCompletionRead {
  const fast = parseWithTokenLogprobs(text);
  if (fast && fitsPolicyCompletion(fast.body)) {
    const completion = fast.body as PolicyCompletion;
    return { ok: true, completion, logprobs: choiceLogprobs(completion, fast.logprobs) };
  }
  const body = JSON.parse(text) as unknown;
  let completion = fitsPolicyCompletion(body) ? (body as PolicyCompletion) : undefined;
  if (!completion) {
    const checked = checkModelResponse(PolicyCompletion, body);
    if (!checked.ok) return checked;
    completion = checked.value;
  }
  return { ok: true, completion, logprobs: choiceLogprobs(completion, []) };
}

/** Each choice's token logprobs: those read already (`read`, by choice index), else its tokens' `logprob`. */
const choiceLogprobs = (
  completion: PolicyCompletion,
  read: readonly (readonly number[] | undefined)[],
): (readonly number[] | null)[] =>
  completion.choices.map((choice, at) => read[at] ?? choice.logprobs?.content?.map((token) => token.logprob) ?? null);

/** The largest value of a PostgreSQL `integer` column, as {@link PolicyCompletion}'s token counts allow. */
const PG_INT_MAX = 2_147_483_647;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isNullish = (value: unknown): value is null | undefined => value === null || value === undefined;
const isTokenCount = (value: unknown): boolean =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= PG_INT_MAX;

/**
 * True only when `body` fits {@link PolicyCompletion}, checked by hand: every rule of the schema for the fields it
 * constrains (all choices, not only the first), nothing looser. The body is then read as it is. Otherwise (false) zod
 * checks it and says what does not fit. Zod's pass over a completion (a looseObject copy of every token's logprob
 * entry) cost about a tenth of a probe worker's CPU; this is the same test without the copies.
 */
export function fitsPolicyCompletion(body: unknown): boolean {
  if (!isObject(body)) return false;
  const { choices, usage } = body;
  if (!Array.isArray(choices) || choices.length === 0) return false;
  for (const choice of choices) {
    if (!isObject(choice)) return false;
    const { message, logprobs } = choice;
    if (!isObject(message)) return false;
    const { content, tool_calls: toolCalls } = message;
    if (!isNullish(content) && (typeof content !== 'string' || content.includes('\u0000'))) return false;
    if (!isNullish(toolCalls) && (!Array.isArray(toolCalls) || !toolCalls.every(isObject))) return false;
    if (!isNullish(logprobs)) {
      if (!isObject(logprobs)) return false;
      const tokens = logprobs.content;
      if (!isNullish(tokens)) {
        if (!Array.isArray(tokens)) return false;
        for (const token of tokens)
          if (!isObject(token) || typeof token.logprob !== 'number' || !Number.isFinite(token.logprob)) return false;
      }
    }
  }
  if (
    !isNullish(usage) &&
    (!isObject(usage) || !isTokenCount(usage.prompt_tokens) || !isTokenCount(usage.completion_tokens))
  )
    return false;
  return true;
}
