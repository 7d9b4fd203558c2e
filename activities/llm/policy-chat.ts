import { APIError } from 'openai';
import { policyPrompt } from '../../core/formats/policy-prompt.js';
import { canonicalJson, type JsonValue } from '../../core/json.js';
import { checkModelResponse, PolicyCompletion, rawResponseText } from '../../core/schemas/model-response.js';
import type { Sample } from '../../core/schemas/sample.js';
import { withRequestSignal } from './abort.js';
import type { ModelUsage } from './calls.js';
import { type CompletionBody, requestCompletion } from './completion-body.js';
import type { Endpoint } from './endpoint-pool.js';

/** Statuses vLLM answers for one request it cannot serve (prompt too long, bad tool schema): a fact about the sample. */
const PER_SAMPLE_REJECTION = new Set([400, 413, 422]);

export interface PolicyChatRequest {
  model: string;
  /** The conversation and tools to show; its target is not read. */
  sample: Sample;
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
      logprobs: readonly { logprob: number }[] | null;
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
  let response: CompletionBody;
  try {
    response = await withRequestSignal(request.signal, (signal) =>
      requestCompletion(
        endpoint,
        {
          model: request.model,
          messages: policyPrompt(request.sample),
          temperature: 0,
          max_tokens: request.maxTokens,
          ...(request.logprobs ? { logprobs: true } : {}),
        },
        signal,
      ),
    );
  } catch (err) {
    if (err instanceof APIError && typeof err.status === 'number' && PER_SAMPLE_REJECTION.has(err.status)) {
      return { kind: 'rejected', status: err.status, message: err.message, latencyMs: elapsed() };
    }
    throw err;
  }
  const checked = checkModelResponse(PolicyCompletion, response.body);
  if (!checked.ok)
    return { kind: 'invalid', error: checked.error, raw: rawResponseText(response.text), latencyMs: elapsed() };
  const completion = checked.value;
  // The schema requires one choice at least.
  const choice = completion.choices[0]!;
  const message = choice.message;
  const toolCalls =
    message.tool_calls && message.tool_calls.length > 0 ? (message.tool_calls as unknown as JsonValue[]) : null;
  return {
    kind: 'reply',
    content: message.content ?? null,
    toolCalls,
    rawOutput: toolCalls ? canonicalJson(toolCalls) : (message.content ?? ''),
    logprobs: choice.logprobs?.content ?? null,
    usage: completion.usage
      ? { promptTokens: completion.usage.prompt_tokens, completionTokens: completion.usage.completion_tokens }
      : undefined,
    latencyMs: elapsed(),
  };
}
