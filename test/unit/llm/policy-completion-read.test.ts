import { describe, expect, test } from 'vitest';
import { parseWithTokenLogprobs } from '../../../activities/llm/completion-body.js';
import {
  fitsPolicyCompletion,
  type PolicyCompletionRead,
  readPolicyCompletion,
} from '../../../activities/llm/policy-chat.js';
import { checkModelResponse, PolicyCompletion } from '../../../core/schemas/model-response.js';

/**
 * `readPolicyCompletion` stands in for `JSON.parse` + `fitsPolicyCompletion` (else zod) of a body's text, reading the
 * tokens' logprobs without their objects: for every text it must decide, fail and read numbers exactly as that path
 * does. Bodies are generated from a seeded generator, vLLM's compact JSON and every kind of oddity around it.
 */

/** Today's path, as policyChat read bodies before: the result every text must give. */
function reference(text: string): PolicyCompletionRead {
  const body = JSON.parse(text) as unknown;
  let completion = fitsPolicyCompletion(body) ? (body as PolicyCompletion) : undefined;
  if (!completion) {
    const checked = checkModelResponse(PolicyCompletion, body);
    if (!checked.ok) return checked;
    completion = checked.value;
  }
  return {
    ok: true,
    completion,
    logprobs: completion.choices.map((choice) => choice.logprobs?.content?.map((token) => token.logprob) ?? null),
  };
}

type Outcome = { threw: string } | { ok: false; error: string } | { ok: true; completion: unknown; logprobs: unknown };

/** A read's result, comparable: each choice's tokens as the numbers read, the rest of the body as it is. */
function outcome(read: (text: string) => PolicyCompletionRead, text: string): Outcome {
  let result: PolicyCompletionRead;
  try {
    result = read(text);
  } catch (err) {
    return { threw: `${(err as Error).name}: ${(err as Error).message}` };
  }
  if (!result.ok) return result;
  const completion = structuredClone(result.completion);
  completion.choices.forEach((choice, at) => {
    if (choice.logprobs && Array.isArray(choice.logprobs.content))
      (choice.logprobs as { content: unknown }).content = result.logprobs[at];
  });
  return { ok: true, completion, logprobs: result.logprobs };
}

/** Bit-for-bit equal numbers: Object.is tells -0 from 0, and equal doubles are otherwise the same bits. */
function sameNumbers(a: readonly (readonly number[] | null)[], b: readonly (readonly number[] | null)[]): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i];
      if (x === null || y === null || y === undefined) return x === y;
      return x.length === y.length && x.every((v, k) => Object.is(v, y[k]));
    })
  );
}

function expectSameAsReference(text: string): void {
  const expected = outcome(reference, text);
  const actual = outcome(readPolicyCompletion, text);
  expect({ text, actual }).toEqual({ text, actual: expected });
  if ('ok' in expected && expected.ok && 'ok' in actual && actual.ok)
    expect(sameNumbers(actual.logprobs as number[][], expected.logprobs as number[][]), text).toBe(true);
}

/** Deterministic pseudo-random numbers (mulberry32). */
function generator(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number): number => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  return { next, int, pick, chance: (p: number): boolean => next() < p };
}
type Random = ReturnType<typeof generator>;

/** Text written into a body as it is (a duplicate key, `NaN`, a cut). */
class Raw {
  constructor(readonly text: string) {}
}
type Node = Raw | null | boolean | number | string | Node[] | { [key: string]: Node } | Entries;
/** An object written key by key, so that a key may repeat. */
class Entries {
  constructor(readonly entries: [string | Raw, Node][]) {}
}

const WHITESPACE = [' ', '\n', '\t', '\r', '  '];

/** JSON text of `node`; `space` says how likely whitespace is at each place JSON allows it. */
function write(node: Node, random: Random, space: number): string {
  const ws = (): string => (space > 0 && random.chance(space) ? random.pick(WHITESPACE) : '');
  const pairs = (entries: [string | Raw, Node][]): string =>
    `{${ws()}${entries
      .map(
        ([key, value]) =>
          `${key instanceof Raw ? key.text : JSON.stringify(key)}${ws()}:${ws()}${write(value, random, space)}${ws()}`,
      )
      .join(`,${ws()}`)}}`;
  if (node instanceof Raw) return node.text;
  if (node instanceof Entries) return pairs(node.entries);
  if (Array.isArray(node))
    return `[${ws()}${node.map((item) => `${write(item, random, space)}${ws()}`).join(`,${ws()}`)}]`;
  if (node !== null && typeof node === 'object') return pairs(Object.entries(node));
  return JSON.stringify(node);
}

const TOKENS = [
  ' need',
  '<',
  'tool',
  '_call',
  '\n{"',
  '":',
  ' "',
  '\\',
  '\\"',
  '"logprob":',
  '"logprob": -1',
  '","logprob":-9,"x":"',
  '"logprobs":{"content":[',
  '{"token":"a","bytes":[97],"logprob":-1,"top_logprobs":[]}',
  'é',
  '日本',
  '😀',
  '\ud83d',
  '\u2028',
  '\u0000',
  '\u0001',
  '\u001f',
  '\t',
  '/',
  '',
  'logprob',
  ']}',
];

const LOGPROBS = [
  -0.269985, -0.004497, 0, -0, -1, -9999.0, -1e-7, -1.5e3, -123456789012345, -0.000001, -5e-324,
  -1.7976931348623157e308, 2.5, 123,
];
/** Numbers of more digits than a double holds. */
const LONG_LOGPROBS = ['-12345678901234567', '-0.1234567890123456789', '-0.30000000000000004441', '-9007199254740993'];

/** A number's text, sometimes written other ways JSON allows (exponents, trailing zeros). */
function numberText(value: number, random: Random): string {
  const plain = JSON.stringify(value);
  switch (random.int(6)) {
    case 0:
      return value.toExponential();
    case 1:
      return value
        .toExponential()
        .toUpperCase()
        .replace('E', random.pick(['E', 'e']));
    case 2:
      return Number.isInteger(value) ? `${plain}.0` : `${plain}0`;
    default:
      return Object.is(value, -0) ? '-0' : plain;
  }
}

/** A `logprob` value: mostly a number, at times something that is none (or not JSON). */
function logprobValue(random: Random): Node {
  if (random.chance(0.85)) return new Raw(numberText(random.pick(LOGPROBS), random));
  if (random.chance(0.3)) return new Raw(random.pick(LONG_LOGPROBS));
  return random.pick<Node>([
    new Raw('NaN'),
    new Raw('-Infinity'),
    new Raw('1e999'),
    new Raw('-1e400'),
    '-0.5',
    null,
    true,
    [-0.5],
    { logprob: -1 },
    new Raw('-.5'),
    new Raw('-01'),
    new Raw('+1'),
    new Raw('0x10'),
    new Raw('1.'),
    new Raw('- 1'),
  ]);
}

function tokenNode(random: Random): Node {
  const token = random.pick(TOKENS);
  const bytes = [...new TextEncoder().encode(token)];
  const logprob = logprobValue(random);
  const roll = random.int(20);
  if (roll === 0) return random.pick<Node>([null, 1, 'x', [], [{ logprob: -1 }], true]);
  if (roll === 1)
    return new Entries([
      ['token', token],
      ['bytes', bytes],
    ]);
  if (roll === 2)
    return new Entries([
      ['token', token],
      ['logprob', random.chance(0.5) ? new Raw('-1') : 'x'],
      ['logprob', logprob],
      ['bytes', bytes],
      ['top_logprobs', []],
    ]);
  if (roll === 3)
    return new Entries([
      ['token', token],
      ['logprob', logprob],
      ['bytes', [[1, 2], [[3]], []]],
      ['top_logprobs', [{ token, logprob: -2, bytes }, [[]]]],
    ]);
  if (roll === 4)
    return new Entries([
      [new Raw('"log\\u0070rob"'), logprob],
      ['token', token],
    ]);
  if (roll === 5) return { token, logprob, bytes: null, top_logprobs: [], extra: { logprob: 'x' } };
  if (roll === 6)
    return new Entries([
      ['token', token],
      ['logprob', logprob],
      ['bytes', new Raw('[01]')],
    ]);
  // vLLM's order or the simulator's.
  return random.chance(0.5)
    ? new Entries([
        ['token', token],
        ['logprob', logprob],
        ['bytes', bytes],
        ['top_logprobs', []],
      ])
    : new Entries([
        ['token', token],
        ['bytes', bytes],
        ['logprob', logprob],
        ['top_logprobs', []],
      ]);
}

function choiceNode(random: Random, index: number): Node {
  const count = random.int(6);
  const tokens: Node[] = Array.from({ length: count }, () => tokenNode(random));
  const content = random.pick<Node>([
    '<tool_call>\n{"name": "f"}\n</tool_call>',
    'hi',
    '"logprobs":{"content":[]}',
    null,
  ]);
  const message: Node = random.chance(0.05)
    ? { role: 'assistant', content, logprobs: { content: tokens } }
    : {
        role: 'assistant',
        content,
        tool_calls: random.pick<Node>([[], null, [{ id: 'x' }], [1]]),
        reasoning_content: null,
      };
  const logprobs: Node = random.chance(0.85)
    ? random.chance(0.03)
      ? new Entries([
          ['content', tokens],
          ['content', random.pick<Node>([[], null, tokens])],
        ])
      : { content: random.chance(0.03) ? random.pick<Node>([null, '\u0001', 'x', {}]) : tokens }
    : random.pick<Node>([null, 'x', new Entries([])]);
  const entries: [string | Raw, Node][] = [
    ['index', index],
    ['message', message],
    ['logprobs', logprobs],
    ['finish_reason', 'stop'],
    ['stop_reason', null],
  ];
  if (random.chance(0.03)) entries.push(['logprobs', random.pick<Node>([null, { content: [] }, logprobs])]);
  if (random.chance(0.02)) entries.splice(2, 1);
  return new Entries(entries);
}

function bodyNode(random: Random): Node {
  const choices: Node[] = Array.from({ length: random.chance(0.8) ? 1 : random.int(4) }, (_, i) =>
    choiceNode(random, i),
  );
  const usage: Node = random.chance(0.9)
    ? { prompt_tokens: 830, completion_tokens: 44, total_tokens: 874 }
    : random.pick<Node>([null, { prompt_tokens: 'lots', completion_tokens: 1 }, { prompt_tokens: -1 }]);
  const entries: [string | Raw, Node][] = [
    ['id', 'chatcmpl-0a17c19b4741e9'],
    ['object', 'chat.completion'],
    ['created', 1796283535],
    ['model', 'sim-student'],
    ['choices', choices],
    ['usage', usage],
    ['prompt_logprobs', null],
  ];
  if (random.chance(0.03)) entries.unshift(['choices', [choiceNode(random, 0)]]);
  if (random.chance(0.03)) entries.push(['choices', random.pick<Node>([[], [choiceNode(random, 0)]])]);
  if (random.chance(0.02)) entries.push(['note', '\u0001']);
  return new Entries(entries);
}

/** The text of a generated body: compact, as vLLM writes it, or with whitespace; at times cut off or corrupted. */
function bodyText(random: Random): string {
  const space = random.chance(0.75) ? 0 : random.pick([0.05, 0.3, 1]);
  let text = write(bodyNode(random), random, space);
  const roll = random.int(40);
  if (roll === 0) text = text.slice(0, random.int(text.length));
  else if (roll === 1) {
    const at = random.int(text.length);
    text = text.slice(0, at) + random.pick(['"', '\\', ',', ']', '}', '{', '\u0001', ' ', 'x']) + text.slice(at);
  } else if (roll === 2) text = `\ufeff${text}`;
  else if (roll === 3) text += random.pick([' ', '\n', 'x', ',', '}']);
  return text;
}

describe('readPolicyCompletion', () => {
  test('reads every generated body as JSON.parse + fitsPolicyCompletion (else zod) does', () => {
    const random = generator(7);
    let read = 0;
    let fast = 0;
    for (let i = 0; i < 4000; i++) {
      const text = bodyText(random);
      expectSameAsReference(text);
      if (readOutcomeOk(text)) read++;
      if (parseWithTokenLogprobs(text)) fast++;
    }
    // The generator reaches both paths often: bodies that fit, bodies read fast, and the rest.
    expect(read).toBeGreaterThan(800);
    expect(fast).toBeGreaterThan(400);
  });

  test('agrees on bodies cut at every length', () => {
    const random = generator(11);
    for (let i = 0; i < 20; i++) {
      const text = write(bodyNode(random), random, 0);
      for (let end = 0; end <= text.length; end++) expectSameAsReference(text.slice(0, end));
    }
  });

  test('agrees on texts that are not a completion at all', () => {
    for (const text of [
      '',
      ' ',
      'null',
      '[]',
      '{}',
      '"x"',
      '<html>502 Bad Gateway</html>',
      '{"choices":[]}',
      '"logprobs":{"content":[]}',
      '{"choices":[{"message":{},"logprobs":{"content":[]}}]}',
      '{"choices":[{"message":{},"logprobs":{"content":[]}}]}}',
      '{"x":"\\"logprobs\\":{\\"content\\":[]}","choices":[{"message":{}}]}',
      '{"a\\"logprobs":{"content":[]},"choices":[{"message":{}}]}',
      '{"choices":[{"message":{},"logprobs":{"content":[]}}],"logprobs":{"content":[]}}',
      '{"choices":[{"message":{},"logprobs":{"content":"\\u0001"}}]}',
      '{"choices":[{"message":{},"logprobs":{"content":[]}}],"s":"\\u0001"}',
      '{"choices":[{"message":{},"logprobs":{"content":"\\u0001"}}],"x":{"logprobs":{"content":[]}}}',
      '{"choices":[{"message":{},"logprobs":{"content":[{"token":"a\tb","logprob":-1,"bytes":[],"top_logprobs":[]}]}}]}',
      '{"choices":[{"message":{},"logprobs":{"content":[{"token":"\u0000","logprob":-1,"bytes":[],"top_logprobs":[]}]}}]}',
      '{"choices":[{"message":{},"logprobs":{"content":[{"token":"\\x","logprob":-1,"bytes":[],"top_logprobs":[]}]}}]}',
      '{"choices":[{"message":{},"logprobs":{"content":[{"token":"\\u12G4","logprob":-1,"bytes":[],"top_logprobs":[]}]}}]}',
    ])
      expectSameAsReference(text);
  });

  test('reads every kind of JSON number as JSON.parse does, bit for bit', () => {
    const random = generator(3);
    const digits = (n: number): string => Array.from({ length: n }, () => String(random.int(10))).join('');
    const numbers: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const whole = random.chance(0.3) ? '0' : `${1 + random.int(9)}${digits(random.int(random.chance(0.2) ? 20 : 4))}`;
      const fraction = random.chance(0.8) ? `.${digits(1 + random.int(random.chance(0.3) ? 22 : 8))}` : '';
      const exponent = random.chance(0.1)
        ? `${random.pick(['e', 'E'])}${random.pick(['', '+', '-'])}${random.int(40)}`
        : '';
      numbers.push(`${random.chance(0.9) ? '-' : ''}${whole}${fraction}${exponent}`);
    }
    const tokens = numbers.map((n) => `{"token":"t","logprob":${n},"bytes":[116],"top_logprobs":[]}`);
    const text = `{"choices":[{"message":{"content":"t"},"logprobs":{"content":[${tokens.join(',')}]}}]}`;
    const fast = parseWithTokenLogprobs(text);
    expect(fast).toBeDefined();
    const read = fast!.logprobs[0]!;
    const wrong = numbers.filter((n, i) => !Object.is(read[i], JSON.parse(n)));
    expect(wrong).toEqual([]);
  });

  test('reads a body of a million tokens (more than the matcher takes) as JSON.parse does', () => {
    const token = '{"token":" need","bytes":[32,110,101,101,100],"logprob":-0.269985,"top_logprobs":[]}';
    const text = `{"choices":[{"message":{"content":"x"},"logprobs":{"content":[${Array(1_000_000).fill(token).join(',')}]}}]}`;
    const read = readPolicyCompletion(text);
    expect(read.ok && read.logprobs[0]?.length).toBe(1_000_000);
    expect(read.ok && read.logprobs[0]?.every((logprob) => logprob === -0.269985)).toBe(true);
  });

  test('reads vLLM and simulator bodies on the fast path, numbers bit for bit', () => {
    const token = (t: string, logprob: string, vllm: boolean): string => {
      const bytes = JSON.stringify([...new TextEncoder().encode(t)]);
      return vllm
        ? `{"token":${JSON.stringify(t)},"logprob":${logprob},"bytes":${bytes},"top_logprobs":[]}`
        : `{"token":${JSON.stringify(t)},"bytes":${bytes},"logprob":${logprob},"top_logprobs":[]}`;
    };
    const numbers = ['-0.269985', '-0', '0', '-9999.0', '-1.5E-7', '-0.12345678901234567', '-1234567890123456', '-3e2'];
    for (const vllm of [true, false]) {
      const tokens = numbers.map((n, i) => token(TOKENS[i % TOKENS.length]!, n, vllm));
      const text =
        `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},` +
        `"logprobs":{"content":[${tokens.join(',')}]},"finish_reason":"stop"},{"index":1,"message":{"content":null},` +
        `"logprobs":{"content":[]}}],"usage":{"prompt_tokens":3,"completion_tokens":8}}`;
      const fast = parseWithTokenLogprobs(text);
      expect(fast?.logprobs).toEqual([numbers.map(Number), []]);
      expect(sameNumbers(fast!.logprobs as number[][], [numbers.map((n) => JSON.parse(n) as number), []])).toBe(true);
      expectSameAsReference(text);
      const read = readPolicyCompletion(text);
      expect(read.ok && read.logprobs[0]).toEqual(numbers.map(Number));
    }
  });
});

function readOutcomeOk(text: string): boolean {
  try {
    return readPolicyCompletion(text).ok;
  } catch {
    return false;
  }
}
