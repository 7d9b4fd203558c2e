import type OpenAI from 'openai';
import { withRequestSignal } from './abort.js';
import type { Endpoint } from './endpoint-pool.js';

/** A chat completion's body as it came: the parsed JSON, unchecked, and the text it was parsed from. */
export interface CompletionBody {
  body: unknown;
  text: string;
}

/**
 * One chat completion whose body is read here, not by openai-node: the client would hand back a body served as
 * `text/html` (a proxy's error page with status 200) as a string, which looks like a reply that does not fit, and it
 * keeps no text of what it parsed. Here the text is kept (it is stored with a reply that does not fit the schema), and
 * a body that is not JSON at all, or cut off, throws the SyntaxError that `toApplicationFailure` maps to a retryable
 * failure: such a body says nothing about the request. HTTP errors are thrown as the client throws them; the request
 * goes out through the endpoint's {@link Endpoint.post} (the client's per-request work was a third of a probe's CPU).
 */
export async function requestCompletion(
  endpoint: Endpoint,
  params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
  signal: AbortSignal,
): Promise<CompletionBody> {
  const text = await requestCompletionText(endpoint, params, signal);
  return { body: JSON.parse(text) as unknown, text };
}

/** {@link requestCompletion}'s body text, unparsed, for a caller that reads it its own way (`policyChat`). */
export async function requestCompletionText(
  endpoint: Endpoint,
  params: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming,
  signal: AbortSignal,
): Promise<string> {
  if (!endpoint.post) {
    // Its own linked signal: the client leaves a listener on the one it is given (openai-node#1811).
    return withRequestSignal(signal, async (linked) =>
      (await endpoint.client.chat.completions.create(params, { signal: linked }).asResponse()).text(),
    );
  }
  return endpoint.post(routeUrl(endpoint, 'chat/completions'), JSON.stringify(params), signal);
}

/** A route of the endpoint's OpenAI base URL, joined as the client's `buildURL` joins a base URL and a path. */
export function routeUrl(endpoint: Endpoint, path: string): string {
  const base = endpoint.client.baseURL;
  return `${base}${base.endsWith('/') ? '' : '/'}${path}`;
}

/** A completion body read by {@link parseWithTokenLogprobs}. */
export interface TokenLogprobsBody {
  /**
   * The body as `JSON.parse` reads it, except that each choice's `logprobs.content` read into {@link logprobs} is an
   * empty array here (its tokens are known to be objects with a finite number `logprob`, all a schema asks of them).
   */
  body: unknown;
  /** By choice index: the `logprob` of each token of that choice's `logprobs.content`, where it was read here. */
  logprobs: (readonly number[] | undefined)[];
}

/**
 * Parses a chat completion's text as `JSON.parse` does, but reads each choice's `logprobs.content` (most of a body
 * asked for logprobs: one object per generated token) as the tokens' `logprob` numbers, making no object per token:
 * the array is matched as a whole by {@link TOKEN_ARRAY}, and `JSON.parse` reads the rest of the text with the array
 * replaced by a stand-in. Parsing such a body whole was most of a probe worker's time reading a reply.
 *
 * Undefined whenever this is not certain to agree with `JSON.parse(text)`, for the caller to parse the text whole:
 * no such array, an array not written as vLLM writes it (compact JSON, each token `token`, `logprob`, `bytes`,
 * `top_logprobs: []` in vLLM's or the simulator's order), text that is not JSON or cut off, a stand-in not found at
 * `choices[i].logprobs.content`. Why a matched array is that field's value: the quote closing `"logprobs"` follows a
 * letter, so it is a real string delimiter, and in text that is JSON up to there it closes a key, which makes
 * `:{"content":[` structure; where the text before is not JSON, neither is the rest, which keeps that text, so
 * `JSON.parse` fails on it. The stand-in is a string no body could hold (U+0001 can only be written `\u0001`, which the
 * text is checked not to contain), so finding every stand-in where a choice's tokens belong shows each array was one.
 */
export function parseWithTokenLogprobs(text: string): TokenLogprobsBody | undefined {
  let rest = '';
  let from = 0;
  const arrays: number[][] = [];
  for (let at = text.indexOf(LOGPROBS_CONTENT); at >= 0; at = text.indexOf(LOGPROBS_CONTENT, from)) {
    const open = at + LOGPROBS_CONTENT.length - 1;
    if (!matchesTokenArray(text, open)) return undefined;
    const end = TOKEN_ARRAY.lastIndex;
    const logprobs = tokenLogprobs(text, open, end);
    if (!logprobs) return undefined;
    arrays.push(logprobs);
    rest += text.slice(from, open) + STAND_IN_JSON;
    from = end;
  }
  if (arrays.length === 0 || text.includes(STAND_IN_ESCAPE)) return undefined;
  rest += text.slice(from);
  let body: unknown;
  try {
    body = JSON.parse(rest);
  } catch {
    return undefined;
  }
  const choices = isRecord(body) ? body.choices : undefined;
  if (!Array.isArray(choices)) return undefined;
  const byChoice: (readonly number[] | undefined)[] = [];
  let found = 0;
  for (let i = 0; i < choices.length; i++) {
    const choice: unknown = choices[i];
    const logprobs = isRecord(choice) ? choice.logprobs : undefined;
    if (!isRecord(logprobs) || logprobs.content !== STAND_IN) continue;
    // Arrays and choices are both in text order, and a choice has one `logprobs.content`.
    byChoice[i] = arrays[found++];
    logprobs.content = [];
  }
  // Fewer: a stand-in was elsewhere, or dropped for a later duplicate key; the text is then read whole.
  return found === arrays.length ? { body, logprobs: byChoice } : undefined;
}

const LOGPROBS_CONTENT = '"logprobs":{"content":[';
const STAND_IN = '\u0001';
const STAND_IN_JSON = '"\\u0001"';
const STAND_IN_ESCAPE = '\\u0001';

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON string, as strictly as `JSON.parse` reads one (no raw control characters, only JSON's escapes). */
const STRING = String.raw`"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"`;
/** A JSON number. */
const NUMBER = String.raw`-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?`;
const BYTES = String.raw`\[(?:(?:0|[1-9][0-9]*)(?:,(?:0|[1-9][0-9]*))*)?\]`;
/** One token as vLLM writes it (`token`, `logprob`, `bytes`, `top_logprobs`), or as the simulator does. */
const TOKEN = String.raw`\{"token":${STRING},(?:"logprob":${NUMBER},"bytes":${BYTES}|"bytes":${BYTES},"logprob":${NUMBER}),"top_logprobs":\[\]\}`;
/**
 * A whole `logprobs.content` array of such tokens, matched from its `[` (sticky). Each token then has one key
 * `logprob`, and `"logprob":` occurs in the array nowhere else: a string holds no unescaped quote.
 */
const TOKEN_ARRAY = new RegExp(String.raw`\[(?:${TOKEN}(?:,${TOKEN})*)?\]`, 'y');

/** Whether {@link TOKEN_ARRAY} matches at `open` (then its `lastIndex` is the array's end). */
function matchesTokenArray(text: string, open: number): boolean {
  TOKEN_ARRAY.lastIndex = open;
  try {
    return TOKEN_ARRAY.test(text);
  } catch {
    // A RangeError: the regexp's backtracking stack ran out (about a million tokens); `JSON.parse` reads such a body.
    return false;
  }
}

/** The `logprob` of each token of the array matched at `open`..`end`, or undefined where one is not finite. */
function tokenLogprobs(text: string, open: number, end: number): number[] | undefined {
  const logprobs: number[] = [];
  const key = '"logprob":';
  for (let at = text.indexOf(key, open); at >= 0 && at < end; at = text.indexOf(key, at + key.length)) {
    const logprob = numberAt(text, at + key.length);
    if (!Number.isFinite(logprob)) return undefined;
    logprobs.push(logprob);
  }
  return logprobs;
}

/** Powers of ten that doubles hold exactly, as far as {@link numberAt} divides by them. */
const EXACT_POWERS_OF_TEN = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];

/**
 * The JSON number at `i` (known to be one), as `JSON.parse` reads it. A decimal of at most 15 digits without exponent
 * is its digits (an exact integer) divided by an exact power of ten: one correctly rounded division, so the nearest
 * double, as `JSON.parse` gives (Clinger's fast path); `Number(text)` reads the others, also to the nearest double.
 * This is most of the work of reading the array, and `Number` of a slice took twice as long.
 */
function numberAt(text: string, i: number): number {
  const negative = text.charCodeAt(i) === 0x2d;
  let j = negative ? i + 1 : i;
  let digits = 0;
  let decimals = 0;
  let value = 0;
  let c = text.charCodeAt(j);
  for (; c >= 0x30 && c <= 0x39; c = text.charCodeAt(++j), digits++) value = value * 10 + (c - 0x30);
  if (c === 0x2e)
    for (c = text.charCodeAt(++j); c >= 0x30 && c <= 0x39; c = text.charCodeAt(++j), digits++, decimals++)
      value = value * 10 + (c - 0x30);
  if (c !== 0x65 && c !== 0x45 && digits <= 15) {
    value /= EXACT_POWERS_OF_TEN[decimals]!;
    return negative ? -value : value;
  }
  // A token's `logprob` is followed by its next key (TOKEN).
  return Number(text.slice(i, text.indexOf(',', j)));
}
