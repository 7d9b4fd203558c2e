/**
 * A pseudo-tokeniser and the logprobs vLLM would report over it. Only the statistics matter to the probe (mean
 * logprob → perplexity), so tokens are word pieces, numbers and punctuation, and each token's logprob scatters
 * deterministically around the confidence the student decided on.
 */
import { hash53 } from './random.js';

// Words, up to three digits, and runs of punctuation (BPE vocabularies merge `": "`-like runs), each with a leading space.
const TOKEN = /\s?[A-Za-z]+|\s?\d{1,3}|\s?[^\sA-Za-z\d]+|\s+/g;

/** The pseudo-tokens of a text; joined they give the text back. */
export function pseudoTokens(text: string): string[] {
  return text.match(TOKEN) ?? [];
}

/** One entry of `choices[].logprobs.content`, as vLLM writes it. */
export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}

const encoder = new TextEncoder();

/**
 * Per-token logprobs whose mean is exactly `meanLogprob` (≤ 0), spread by a hash of `key` so the same output always gets
 * the same numbers. With `topLogprobs` > 0 each entry lists the token itself first, then lower-ranked alternatives.
 */
export function tokenLogprobs(
  tokens: readonly string[],
  meanLogprob: number,
  key: string,
  topLogprobs = 0,
): TokenLogprob[] {
  const logprobs = spread(tokens.length, meanLogprob, key);
  return tokens.map((token, i) => {
    const logprob = logprobs[i] as number;
    const bytes = Array.from(encoder.encode(token));
    const top: TokenLogprob['top_logprobs'] = [];
    if (topLogprobs > 0) {
      top.push({ token, logprob, bytes });
      for (let k = 1; k < topLogprobs; k++) {
        const alt = `${token}${'_'.repeat(k)}`;
        top.push({
          token: alt,
          logprob: Math.min(logprob, -0.01) - 1.5 * k - 1,
          bytes: Array.from(encoder.encode(alt)),
        });
      }
    }
    return { token, logprob, bytes, top_logprobs: top };
  });
}

/** {@link spread}'s logprobs in millionths (integers). */
function spreadMicros(count: number, mean: number, key: string): number[] {
  if (count === 0) return [];
  let x = hash53(key) % 4294967291 || 1;
  const weights = new Array<number>(count);
  let sum = 0;
  for (let i = 0; i < count; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const w = 0.3 + 1.4 * ((x >>> 0) / 4294967296);
    weights[i] = w;
    sum += w;
  }
  const scale = (mean * count) / sum;
  // Six decimals: shorter to write and parse than 17 digits.
  for (let i = 0; i < count; i++) weights[i] = Math.round((weights[i] as number) * scale * 1e6);
  return weights;
}

/** `count` logprobs whose mean is `mean` (to 1e-6), scattered by a hash of `key` (xorshift32 over 32-bit integers). */
function spread(count: number, mean: number, key: string): number[] {
  const micros = spreadMicros(count, mean, key);
  for (let i = 0; i < count; i++) micros[i] = (micros[i] as number) / 1e6;
  return micros;
}

/** `000` … `999`: three digits of a fraction. */
const DIGITS3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** The same with trailing zeros dropped: the last three digits of a fraction as a number prints them. */
const DIGITS3_TRIMMED = DIGITS3.map((digits) => digits.replace(/0+$/, ''));
/** `-0.000` … `-0.999`, and the same trimmed: the head of almost every logprob (all lie in (-1, 0)). */
const NEGATIVE_HEAD = DIGITS3.map((digits) => `-0.${digits}`);
const NEGATIVE_HEAD_TRIMMED = DIGITS3_TRIMMED.map((digits) => `-0.${digits}`);

/**
 * `String(micros / 1e6)` for an integer count of millionths, without formatting a double (a sixth of the sim's reply
 * time). The division is correctly rounded and no shorter decimal lies as near, so the shortest round-trip form that
 * JavaScript prints is the six decimal digits with trailing zeros dropped (never an exponent: |x| ≥ 1e-6 or 0). The
 * digits come from tables of three: a logprob in (-1, 0), nearly every one, is then one concatenation of two strings.
 */
function microsText(micros: number): string {
  if (micros < 0 && micros > -1e6) {
    const high = Math.floor(-micros / 1000);
    const low = -micros - high * 1000;
    return low === 0
      ? (NEGATIVE_HEAD_TRIMMED[high] as string)
      : (NEGATIVE_HEAD[high] as string) + (DIGITS3_TRIMMED[low] as string);
  }
  if (micros === 0) return '0';
  const sign = micros < 0 ? '-' : '';
  const magnitude = micros < 0 ? -micros : micros;
  const whole = Math.floor(magnitude / 1e6);
  const fraction = magnitude - whole * 1e6;
  if (fraction === 0) return `${sign}${whole}`;
  const high = Math.floor(fraction / 1000);
  const low = fraction - high * 1000;
  const digits =
    low === 0 ? (DIGITS3_TRIMMED[high] as string) : (DIGITS3[high] as string) + (DIGITS3_TRIMMED[low] as string);
  return `${sign}${whole}.${digits}`;
}

const tokenJson = new Map<string, string>();

/** `"token":…,` with the token's bytes, cached: the same few thousand tokens recur in every reply. */
function tokenPrefix(token: string): string {
  let cached = tokenJson.get(token);
  if (cached === undefined) {
    if (tokenJson.size > 100_000) tokenJson.clear();
    cached = `{"token":${JSON.stringify(token)},"bytes":[${Array.from(encoder.encode(token)).join(',')}],"logprob":`;
    tokenJson.set(token, cached);
  }
  return cached;
}

/**
 * The JSON text of `logprobs.content`, the same data as {@link tokenLogprobs} written straight to a string: the
 * server's hot path, where building thousands of small objects per second only feeds the garbage collector.
 */
export function tokenLogprobsJson(
  tokens: readonly string[],
  meanLogprob: number,
  key: string,
  topLogprobs = 0,
): string {
  if (topLogprobs > 0) return JSON.stringify(tokenLogprobs(tokens, meanLogprob, key, topLogprobs));
  const micros = spreadMicros(tokens.length, meanLogprob, key);
  // Pieces joined once: `out +=` per piece built a rope of hundreds of nodes, and flattening it to write the reply
  // (Buffer.from) cost more than building it.
  const parts = new Array<string>(3 * tokens.length + 2);
  parts[0] = '[';
  for (let i = 0; i < tokens.length; i++) {
    parts[3 * i + 1] = tokenPrefix(tokens[i] as string);
    parts[3 * i + 2] = microsText(micros[i] as number);
    parts[3 * i + 3] = i + 1 < tokens.length ? ',"top_logprobs":[]},' : ',"top_logprobs":[]}';
  }
  parts[3 * tokens.length + 1] = ']';
  return parts.join('');
}
