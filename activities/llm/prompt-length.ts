import { APIError } from 'openai';
import { policyPrompt, type PolicyPromptMessage } from '../../core/formats/policy-prompt.js';
import type { Sample } from '../../core/schemas/sample.js';
import { withRequestSignal } from './abort.js';
import type { Endpoint } from './endpoint-pool.js';

/**
 * Counting a sample's prompt tokens before it is sent, so a prompt that cannot fit the policy's context (or the
 * trainer's prompt budget, which verl enforces by dropping the prompt) is recorded as `too_long` instead of coming
 * back as a 400 that looks like a model error (LOOPTOOL-METHOD.md §2.4 risk, §10.4 item 6).
 *
 * The count is the server's own: vLLM's `POST /tokenize` (at the server root, beside `/v1`) renders the chat with
 * the model's template and returns `count` and `max_model_len`. The first sample sent to a server is always counted
 * (that is how its context is learned); after that only prompts whose byte length could exceed the limit are
 * ({@link promptTokenUpperBound}), so short prompts cost no extra request. Servers without /tokenize (404/405) are
 * remembered and skipped (as are servers whose /tokenize refuses a chat); their overlong prompts are still caught by the
 * 400 they answer
 * ({@link isContextLengthRejection}).
 */

/** What one server said about a prompt: its token count and the model's context. */
export interface PromptLength {
  promptTokens: number;
  maxModelLen: number | null;
}

/**
 * What each server said about its context, by server root: `max_model_len` from its first /tokenize answer, or null
 * when it has no /tokenize (404/405) or did not say. Asked once per process.
 */
const contextOfServer = new Map<string, number | null>();

/** The server's context as learned from its /tokenize (null: it cannot tell), or undefined before it was asked. */
export function knownServerContext(endpoint: Endpoint): number | null | undefined {
  return contextOfServer.get(serverRoot(endpoint.baseURL));
}

/** The server root of an OpenAI base URL (`http://h:8000/v1` → `http://h:8000`), where vLLM serves /tokenize. */
export function serverRoot(baseURL: string): string {
  return baseURL.replace(/\/+$/, '').replace(/\/v1$/, '');
}

/**
 * An upper bound on a rendered prompt's tokens without a tokenizer: byte-level BPE tokens are at least one byte each
 * (special tokens are longer than one byte as text), and a chat template adds a few tokens per message. A prompt
 * under the limit by this bound needs no count.
 */
export function promptTokenUpperBound(
  sample: Sample,
  messages: readonly PolicyPromptMessage[] = policyPrompt(sample),
): number {
  // The content's own UTF-8 bytes (not its JSON text, whose escapes only add slack): one pass, no copy.
  let bytes = 64;
  for (const message of messages) bytes += 32 + Buffer.byteLength(message.content ?? '', 'utf8');
  return bytes;
}

/** The server's count of a sample's prompt as the probe sends it, or undefined when the server cannot count. */
export async function countPromptTokens(
  endpoint: Endpoint,
  request: { model: string; sample: Sample; prompt?: readonly PolicyPromptMessage[]; signal: AbortSignal },
): Promise<PromptLength | undefined> {
  const root = serverRoot(endpoint.baseURL);
  if (contextOfServer.get(root) === null) return undefined;
  try {
    const body = await withRequestSignal(request.signal, (signal) =>
      endpoint.client.post<unknown>(`${root}/tokenize`, {
        body: {
          model: request.model,
          messages: request.prompt ?? policyPrompt(request.sample),
          add_generation_prompt: true,
        },
        signal,
      }),
    );
    const { count, max_model_len: maxModelLen } = (body ?? {}) as { count?: unknown; max_model_len?: unknown };
    const context = typeof maxModelLen === 'number' && maxModelLen > 0 ? maxModelLen : null;
    contextOfServer.set(root, context);
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) return undefined;
    return { promptTokens: count, maxModelLen: context };
  } catch (err) {
    // No such route (404/405), or one that does not take a chat (400/422): this server cannot count; its chat
    // requests still say when a prompt is too long. Rate limits and server errors are transient and thrown.
    if (err instanceof APIError && typeof err.status === 'number' && [400, 404, 405, 422].includes(err.status)) {
      contextOfServer.set(root, null);
      return undefined;
    }
    throw err;
  }
}

/** vLLM's and OpenAI's wording when a request does not fit the context ("maximum context length is 4096 tokens"). */
export function isContextLengthRejection(message: string): boolean {
  return /maximum context length|context length|too many tokens|prompt is too long|max_model_len/i.test(message);
}

/**
 * The longest prompt a sample may have: within the context with room for the reply, and within the trainer's prompt
 * budget (verl drops longer prompts, TRL's recipe too).
 */
export function promptTokenLimit(input: {
  maxPromptTokens: number;
  maxTokens: number;
  contextTokens: number | null;
}): number {
  const context = input.contextTokens === null ? Infinity : input.contextTokens - input.maxTokens;
  return Math.min(input.maxPromptTokens, context);
}
