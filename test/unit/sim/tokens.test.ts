import { describe, expect, test } from 'vitest';
import { pseudoTokens, tokenLogprobs, tokenLogprobsJson } from '../../../sim/tokens.js';

const text =
  '<tool_call>\n{"name": "convert_currency", "arguments": {"amount": 1234.5, "from_currency": "USD"}}\n</tool_call>';

describe('pseudo-tokens and their logprobs', () => {
  test('tokens join back to the text', () => {
    const tokens = pseudoTokens(text);
    expect(tokens.join('')).toBe(text);
    expect(tokens.length).toBeGreaterThan(10);
  });

  test('logprobs average to the requested mean, are never positive, and repeat for the same key', () => {
    const tokens = pseudoTokens(text);
    for (const mean of [-0.01, -0.3, -1.2]) {
      const entries = tokenLogprobs(tokens, mean, 'k');
      const average = entries.reduce((sum, e) => sum + e.logprob, 0) / entries.length;
      expect(average).toBeCloseTo(mean, 5);
      for (const entry of entries) expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(tokenLogprobs(tokens, mean, 'k')).toEqual(entries);
      expect(tokenLogprobs(tokens, mean, 'other')).not.toEqual(entries);
    }
  });

  test('the JSON the server writes is byte for byte the object form as JavaScript prints it', () => {
    // The server writes logprobs as text from integer millionths; every number must read as String(logprob) does.
    const tokens = pseudoTokens(`${text} ${text}`);
    for (const mean of [0, -0.000001, -0.0000004, -0.01, -0.2, -0.35, -1.2, -7.5, -12.345678, -123.4])
      for (const key of ['k', 'other', 'a|b|c', 's:0123456789abcd']) {
        const expected = `[${tokenLogprobs(tokens, mean, key)
          .map(
            (e) =>
              `{"token":${JSON.stringify(e.token)},"bytes":[${e.bytes.join(',')}],"logprob":${String(e.logprob)},"top_logprobs":[]}`,
          )
          .join(',')}]`;
        expect(tokenLogprobsJson(tokens, mean, key)).toBe(expected);
      }
  });

  test('a lone token takes the mean itself: each digit pattern around the three-digit tables prints as String() does', () => {
    // One token's logprob is the mean to the millionth, so each of these lands on the number written.
    const means = [0, -0.000001, -0.000999, -0.001, -0.00101, -0.01, -0.1, -0.12, -0.123, -0.1234, -0.5, -0.999999];
    for (const mean of [...means, -1, -1.000001, -1.5, -2.000999, -12.3, -100]) {
      const json = tokenLogprobsJson(['x'], mean, 'k');
      expect(json).toBe(`[{"token":"x","bytes":[120],"logprob":${String(mean)},"top_logprobs":[]}]`);
    }
  });

  test('the JSON the server writes holds the same entries as the object form, alternatives included when asked', () => {
    const tokens = pseudoTokens(text);
    expect(JSON.parse(tokenLogprobsJson(tokens, -0.2, 'k'))).toEqual(tokenLogprobs(tokens, -0.2, 'k'));
    const withTop = JSON.parse(tokenLogprobsJson(tokens, -0.2, 'k', 3)) as {
      token: string;
      top_logprobs: { token: string; logprob: number }[];
    }[];
    expect(withTop[0]?.top_logprobs).toHaveLength(3);
    expect(withTop[0]?.top_logprobs[0]?.token).toBe(withTop[0]?.token);
    expect(withTop[0]!.top_logprobs[1]!.logprob).toBeLessThan(withTop[0]!.top_logprobs[0]!.logprob);
  });
});
