import { z } from 'zod';

/**
 * The response bodies looptool reads from model servers, validated where they arrive (activities/llm/) before any
 * field is used or written. A body that parses as JSON but does not fit is data about that one request (a probe row
 * with outcome `parse_error` / `invalid_response`, a failed judge vote or generation), never a failed database write:
 * an unchecked `"prompt_tokens": "lots"` used to reach the `integer` column and fail the whole page's insert on every
 * retry. Objects are loose because servers add fields of their own (vLLM's `reasoning_content`, `stop_reason`,
 * `prompt_logprobs`, …); only the fields read are constrained.
 */

/** The largest value of a PostgreSQL `integer` column (the ledger's and probe results' token counts). */
const PG_INT_MAX = 2_147_483_647;

/**
 * A token count as the ledger stores it: a non-negative integer that fits PostgreSQL's `integer`. Its type error says
 * "integer" (zod reports a string given to `z.int()` as "expected number").
 */
const TokenCount = z
  .int({ error: (issue) => (issue.code === 'invalid_type' ? 'expected integer' : undefined) })
  .min(0)
  .max(PG_INT_MAX);

/**
 * Text a model wrote: PostgreSQL `text` cannot hold U+0000, so a reply carrying it would fail the insert like a
 * mistyped count does; it is refused here with the rest of the shape.
 */
const ModelText = z.string().refine((text) => !text.includes('\u0000'), {
  error: 'contains U+0000, which PostgreSQL text cannot store',
});

/** `usage` of a chat completion. Absent or null is accepted (token counts are then unknown, stored as 0 / null). */
export const CompletionUsage = z.looseObject({
  prompt_tokens: TokenCount,
  completion_tokens: TokenCount,
});
export type CompletionUsage = z.infer<typeof CompletionUsage>;

/** One generated token's log-probability (`logprobs.content[i]`); the probe's perplexity is their mean. */
export const TokenLogprob = z.looseObject({ logprob: z.number() });
export type TokenLogprob = z.infer<typeof TokenLogprob>;

/**
 * A chat completion as the probe and the evaluation read it (`policyChat`): the first choice's text and OpenAI
 * `tool_calls`, its token log-probabilities, and the usage. A tool call's own fields are not constrained here: they
 * are the model's output, and core/parse reports a malformed one as that sample's parse error.
 */
export const PolicyCompletion = z.looseObject({
  choices: z
    .array(
      z.looseObject({
        message: z.looseObject({
          content: ModelText.nullish(),
          tool_calls: z.array(z.looseObject({})).nullish(),
        }),
        logprobs: z.looseObject({ content: z.array(TokenLogprob).nullish() }).nullish(),
      }),
    )
    .min(1),
  usage: CompletionUsage.nullish(),
});
export type PolicyCompletion = z.infer<typeof PolicyCompletion>;

/** A structured-output completion as the judge, the validator and the generator read it (`completeStructured`). */
export const StructuredCompletion = z.looseObject({
  choices: z.array(z.looseObject({ message: z.looseObject({ content: ModelText.nullish() }) })).min(1),
  usage: CompletionUsage.nullish(),
});
export type StructuredCompletion = z.infer<typeof StructuredCompletion>;

/** What a value is, for a message: `string "lots"`, `1.5`, `null`, `array`, `object` (strings cut at 40 chars). */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return `array of ${value.length}`;
  if (typeof value === 'string')
    return `string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return typeof value;
}

/** `choices[0].message.content`, or `(body)` for the body itself. */
function describePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  return out || '(body)';
}

/** One problem, as stored in a result's `error`: `usage.prompt_tokens: expected integer, got string "lots"`. */
function describeIssue(issue: z.core.$ZodIssue & { input?: unknown }): string {
  const got = describeValue(issue.input);
  let problem: string;
  switch (issue.code) {
    case 'invalid_type': {
      // A schema's own message ("expected integer") wins over the name of the type zod checked first.
      const expected = issue.message.startsWith('expected ')
        ? issue.message
        : `expected ${issue.expected === 'int' ? 'integer' : issue.expected}`;
      problem = issue.input === undefined ? `missing (${expected})` : `${expected}, got ${got}`;
      break;
    }
    case 'too_small':
      problem =
        issue.origin === 'array'
          ? `expected at least ${String(issue.minimum)} item(s), got none`
          : `expected at least ${String(issue.minimum)}, got ${got}`;
      break;
    case 'too_big':
      problem = `expected at most ${String(issue.maximum)}, got ${got}`;
      break;
    default:
      problem = issue.message;
  }
  return `${describePath(issue.path)}: ${problem}`;
}

export type ResponseCheck<T> = { ok: true; value: T } | { ok: false; error: string };

/**
 * Checks a parsed response body against one of the schemas above. On failure, `error` names the first field and its
 * problem (and how many more there were), in words a person reading a probe row or a failed vote can act on.
 */
export function checkModelResponse<T>(schema: z.ZodType<T>, body: unknown): ResponseCheck<T> {
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return { ok: true, value: result.data };
  const [first, ...rest] = result.error.issues;
  const error = first ? describeIssue(first) : 'does not fit the response schema';
  return { ok: false, error: rest.length > 0 ? `${error} (and ${rest.length} more)` : error };
}

/** How much of an invalid response body is kept as the result's raw output: enough to see the problem. */
export const RAW_RESPONSE_LIMIT = 16_384;

/** A response body's text as stored with a result: cut at {@link RAW_RESPONSE_LIMIT} characters, saying so. */
export function rawResponseText(text: string): string {
  if (text.length <= RAW_RESPONSE_LIMIT) return text;
  return `${text.slice(0, RAW_RESPONSE_LIMIT)}… (${text.length - RAW_RESPONSE_LIMIT} more characters)`;
}
