import { createHash } from 'node:crypto';
import type OpenAI from 'openai';
import { z } from 'zod';
import { parseJson } from '../../core/json.js';
import { stripThinking } from '../../core/parse/model-output.js';
import { checkModelResponse, rawResponseText, StructuredCompletion } from '../../core/schemas/model-response.js';
import { withRequestSignal } from './abort.js';
import type { ModelUsage } from './calls.js';
import { requestCompletion } from './completion-body.js';
import type { Endpoint } from './endpoint-pool.js';

export type StructuredResult<T> =
  | { ok: true; value: T; raw: string; usage: ModelUsage; latencyMs: number }
  | { ok: false; reason: string; raw: string; usage: ModelUsage; latencyMs: number };

export interface StructuredRequest<T> {
  model: string;
  messages: OpenAI.Chat.ChatCompletionMessageParam[];
  schema: z.ZodType<T>;
  /** The JSON schema's name; the simulated judge and generator route on it. */
  name: string;
  temperature?: number;
  topP?: number;
  /** vLLM's `top_k`, an extra body field (the OpenAI API has none; vLLM reads it from the body). */
  topK?: number;
  presencePenalty?: number;
  maxTokens?: number;
  /**
   * Sampling seed (vLLM honours it per request). Sampled calls pass one derived from what they are for, so a retried
   * activity draws the same vote or sample again and the loop's datasets do not depend on where a crash happened.
   */
  seed?: number;
  signal?: AbortSignal;
}

/** A request seed that is a pure function of its parts (31 bits, as servers accept). */
export function requestSeed(...parts: readonly (string | number)[]): number {
  return Number.parseInt(createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 8), 16) & 0x7fffffff;
}

/**
 * Body fields vLLM reads beyond the OpenAI API (Python clients pass them as `extra_body`): the client sends the body as
 * given, so they ride along; typed as no fields so the request keeps the API's type.
 */
function vllmExtra(fields: { top_k: number }): Record<never, never> {
  return fields;
}

const jsonSchemas = new WeakMap<z.ZodType, Record<string, unknown>>();

/**
 * The JSON schema a server's guided decoding enforces, derived from the same zod schema that validates the reply, so
 * the model cannot satisfy one and fail the other. Lossless-JSON values (zod custom types) become "any JSON".
 */
export function responseJsonSchema(schema: z.ZodType): Record<string, unknown> {
  let cached = jsonSchemas.get(schema);
  if (!cached) {
    cached = z.toJSONSchema(schema, { unrepresentable: 'any' }) as Record<string, unknown>;
    jsonSchemas.set(schema, cached);
  }
  return cached;
}

/**
 * One structured-output call: `response_format` is the zod schema as JSON schema (vLLM enforces it with guided
 * decoding), the reply's `<think>` part is dropped, the rest parsed losslessly and validated. The response body is
 * checked against {@link StructuredCompletion} first, so its usage is known to be token counts before the ledger
 * records it. A reply that does not fit, or a body that is JSON but no completion (then `raw` is the body's text and
 * the usage zero), comes back as `{ok: false}`, never thrown; a body that is not JSON throws a SyntaxError (retryable)
 * and HTTP failures are thrown, for the caller to map.
 */
export async function completeStructured<T>(
  endpoint: Endpoint,
  request: StructuredRequest<T>,
): Promise<StructuredResult<T>> {
  const started = performance.now();
  const response = await withRequestSignal(request.signal, (signal) =>
    requestCompletion(
      endpoint,
      {
        model: request.model,
        messages: request.messages,
        temperature: request.temperature ?? 0,
        ...(request.topP !== undefined ? { top_p: request.topP } : {}),
        ...(request.presencePenalty !== undefined ? { presence_penalty: request.presencePenalty } : {}),
        ...(request.topK !== undefined ? vllmExtra({ top_k: request.topK }) : {}),
        ...(request.maxTokens !== undefined ? { max_tokens: request.maxTokens } : {}),
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        response_format: {
          type: 'json_schema',
          json_schema: { name: request.name, schema: responseJsonSchema(request.schema), strict: true },
        },
      },
      signal,
    ),
  );
  const latencyMs = Math.round(performance.now() - started);
  const checked = checkModelResponse(StructuredCompletion, response.body);
  if (!checked.ok)
    return {
      ok: false,
      reason: `invalid response: ${checked.error}`,
      raw: rawResponseText(response.text),
      usage: { promptTokens: 0, completionTokens: 0 },
      latencyMs,
    };
  const completion = checked.value;
  const usage = {
    promptTokens: completion.usage?.prompt_tokens ?? 0,
    completionTokens: completion.usage?.completion_tokens ?? 0,
  };
  const raw = completion.choices[0]?.message.content ?? '';
  const { content } = stripThinking(raw);
  const parsed = parseJson(content.trim());
  if (!parsed.ok)
    return {
      ok: false,
      reason: `not JSON: ${parsed.error.message} at column ${parsed.error.column}`,
      raw,
      usage,
      latencyMs,
    };
  const validated = request.schema.safeParse(parsed.value);
  if (!validated.success) {
    const issue = validated.error.issues[0];
    return {
      ok: false,
      reason: `does not fit the schema: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid'}`,
      raw,
      usage,
      latencyMs,
    };
  }
  return { ok: true, value: validated.data, raw, usage, latencyMs };
}
