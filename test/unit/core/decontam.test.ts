import { describe, expect, test } from 'vitest';
import { DecontaminationConfig, LoopConfig } from '../../../core/config.js';
import {
  EvalOverlapIndex,
  evalIndexFingerprint,
  evalQuestionFromRecord,
  isContaminated,
  MAX_RECORDED_QUESTIONS,
  normalizeToolName,
  wordTokens,
} from '../../../core/decontam.js';
import type { JsonValue } from '../../../core/json.js';

const LONG_QUESTION =
  'Find the area of a triangle with a base of 10 units and a height of 5 units, rounded to two decimals.';
const SHORT_QUESTION = 'Calculate the factorial of 5 using math functions.'; // 8 tokens

function bfclIndex(settings = { ngram: 13, minQuestionTokens: 8 }): EvalOverlapIndex {
  const index = new EvalOverlapIndex(settings);
  index.add({ key: 'bfcl/simple_0', userTexts: [LONG_QUESTION], toolNames: ['calculate_triangle_area'] });
  index.add({ key: 'bfcl/simple_1', userTexts: [SHORT_QUESTION], toolNames: ['math.factorial'] });
  index.add({ key: 'bfcl/simple_2', userTexts: ['What time is it?'], toolNames: ['get_time'] });
  return index;
}

describe('normalisation', () => {
  test('word tokens ignore case, punctuation, spacing and accents', () => {
    expect(wordTokens("  Café's ÜBER-cool\tX_Y, 3.5 km! ")).toEqual([
      'cafe',
      's',
      'uber',
      'cool',
      'x',
      'y',
      '3',
      '5',
      'km',
    ]);
    expect(wordTokens('ＦＵＬＬ width')).toEqual(['full', 'width']);
    expect(wordTokens('...')).toEqual([]);
  });

  test('tool names: dots, dashes, spaces, case and camelCase spell the same name', () => {
    for (const spelling of ['math.hypot', 'Math_Hypot', 'mathHypot', 'math-hypot', ' MATH hypot ', 'math..hypot'])
      expect(normalizeToolName(spelling)).toBe('math_hypot');
    expect(normalizeToolName('getHTTPResponse')).toBe('get_http_response');
    expect(normalizeToolName('v2Search')).toBe('v2_search');
    expect(normalizeToolName('...')).toBe('');
  });
});

describe('n-gram overlap', () => {
  test('a sample sharing 13 consecutive tokens with a question overlaps it, through case and punctuation', () => {
    const index = bfclIndex();
    const copied = 'Hi! FIND the area of a triangle -- with a base of 10 units and a height of 5; thanks';
    expect(index.overlap({ userTexts: [copied], toolNames: [] })).toEqual({
      toolNames: [],
      questions: ['bfcl/simple_0'],
    });
  });

  test('12 shared tokens are not an overlap at n = 13, and are at n = 12', () => {
    const twelve = 'the area of a triangle with a base of 10 units and'; // 12 tokens of the question, then it stops
    expect(wordTokens(twelve)).toHaveLength(12);
    expect(bfclIndex().sharedQuestions([twelve])).toEqual([]);
    expect(bfclIndex({ ngram: 12, minQuestionTokens: 8 }).sharedQuestions([twelve])).toEqual(['bfcl/simple_0']);
  });

  test('the order of tokens matters: the same words shuffled do not overlap', () => {
    const shuffled = wordTokens(LONG_QUESTION).reverse().join(' ');
    expect(bfclIndex().sharedQuestions([shuffled])).toEqual([]);
  });

  test('a short question counts as one gram of its whole text; shorter than minQuestionTokens it is ignored', () => {
    const index = bfclIndex();
    expect(index.sharedQuestions(['Please calculate the factorial of 5 using math functions right now'])).toEqual([
      'bfcl/simple_1',
    ]);
    // Part of the short question is not a copy of it.
    expect(index.sharedQuestions(['calculate the factorial of 5 using math'])).toEqual([]);
    // "What time is it?" has 4 tokens: too generic to mean a copy.
    expect(index.sharedQuestions(['what time is it'])).toEqual([]);
    expect(bfclIndex({ ngram: 13, minQuestionTokens: 4 }).sharedQuestions(['so what time is it'])).toEqual([
      'bfcl/simple_2',
    ]);
  });

  test('n-grams do not span two user messages', () => {
    const tokens = wordTokens(LONG_QUESTION);
    // 21 tokens as 10 + 11: every 13-gram of the question crosses the boundary.
    const split = [tokens.slice(0, 10).join(' '), tokens.slice(10).join(' ')];
    expect(bfclIndex().sharedQuestions(split)).toEqual([]);
  });

  test('every question sharing the n-gram is recorded, sorted, at most MAX_RECORDED_QUESTIONS', () => {
    const index = new EvalOverlapIndex({ ngram: 13, minQuestionTokens: 8 });
    for (let i = MAX_RECORDED_QUESTIONS + 3; i > 0; i--)
      index.add({ key: `set/q${String(i).padStart(2, '0')}`, userTexts: [LONG_QUESTION], toolNames: [] });
    const found = index.sharedQuestions([LONG_QUESTION]);
    expect(found).toHaveLength(MAX_RECORDED_QUESTIONS);
    expect(found[0]).toBe('set/q01');
    expect(index.stats.ngrams).toBe(wordTokens(LONG_QUESTION).length - 13 + 1);
  });
});

describe('tool-name overlap', () => {
  test('a sample offering a tool an evaluation question offers overlaps it, whatever the spelling', () => {
    const index = bfclIndex();
    expect(index.overlap({ userTexts: ['unrelated'], toolNames: ['MathFactorial', 'get_weather'] })).toEqual({
      toolNames: ['math_factorial'],
      questions: [],
    });
    expect(index.sharedToolNames(['calculate.triangle.area', 'calculateTriangleArea'])).toEqual([
      'calculate_triangle_area',
    ]);
    expect(index.sharedToolNames(['calculate_triangle'])).toEqual([]);
  });

  test('isContaminated counts tool names only when the config says so', () => {
    expect(isContaminated({ toolNames: ['a'], questions: [] }, true)).toBe(true);
    expect(isContaminated({ toolNames: ['a'], questions: [] }, false)).toBe(false);
    expect(isContaminated({ toolNames: [], questions: ['q'] }, false)).toBe(true);
    expect(isContaminated({ toolNames: [], questions: [] }, true)).toBe(false);
  });
});

describe('evaluation question records and the index identity', () => {
  test('user messages of every turn and the function names are read; multi-turn records are accepted', () => {
    const record: JsonValue = {
      id: 'multi_turn_base_0',
      question: [
        [
          { role: 'system', content: 'sys' },
          { role: 'user', content: 'first' },
        ],
        [{ role: 'user', content: 'second' }],
      ],
      function: [{ name: 'ls' }, { name: 'cd', description: 'change dir' }],
    };
    expect(evalQuestionFromRecord(record, 'mt')).toEqual({
      ok: true,
      value: { key: 'mt/multi_turn_base_0', userTexts: ['first', 'second'], toolNames: ['ls', 'cd'] },
    });
  });

  test('a record that is not a question is rejected with its field', () => {
    const bad = evalQuestionFromRecord({ id: 'x', question: 'text' }, 'set');
    expect(bad.ok).toBe(false);
    expect(bad.ok ? undefined : bad.rejection.field).toBe('question');
    const noId = evalQuestionFromRecord({ question: [[]] }, 'set');
    expect(noId.ok ? undefined : noId.rejection.field).toBe('id');
  });

  test('the fingerprint changes with the settings and the files, not with their order', () => {
    const a = { set: 'bfcl', file: 'a.json', sha256: 'a'.repeat(64), questions: 1 };
    const b = { set: 'bfcl', file: 'b.json', sha256: 'b'.repeat(64), questions: 2 };
    const settings = { ngram: 13, minQuestionTokens: 8 };
    const base = evalIndexFingerprint(settings, [a, b]);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(evalIndexFingerprint(settings, [b, a])).toBe(base);
    expect(evalIndexFingerprint({ ...settings, ngram: 12 }, [a, b])).not.toBe(base);
    expect(evalIndexFingerprint({ ...settings, minQuestionTokens: 6 }, [a, b])).not.toBe(base);
    expect(evalIndexFingerprint(settings, [a])).not.toBe(base);
    // The path is where a file was found, not what it holds.
    expect(evalIndexFingerprint(settings, [{ ...a, file: 'elsewhere/a.json' }, b])).toBe(base);
  });
});

describe('config', () => {
  test('decontamination defaults: off, 13-grams, 8-token short questions, tool names count', () => {
    expect(DecontaminationConfig.parse({})).toEqual({
      exclude: false,
      ngram: 13,
      minQuestionTokens: 8,
      toolNames: true,
    });
    const loop = LoopConfig.shape.decontamination.parse(undefined);
    expect(loop.ngram).toBe(13);
  });

  test('bad settings are refused with their key', () => {
    const result = DecontaminationConfig.safeParse({ ngram: 1, exlcude: true });
    expect(result.success).toBe(false);
    const paths = result.success ? [] : result.error.issues.map((i) => (i.path.length ? i.path.join('.') : i.code));
    expect(paths).toEqual(expect.arrayContaining(['ngram', 'unrecognized_keys']));
  });
});
