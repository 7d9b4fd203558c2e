import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { runLooptool } from '../../helpers/cli.js';

const DATA = fileURLToPath(new URL('../../../data/bfcl/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'looptool-score-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function firstLines(file: string, count: number): string[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(0, count);
}

function write(name: string, lines: readonly string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

// A small BFCL fixture: the first three simple_python questions with their possible answers, two irrelevance questions.
const questions = write('questions.jsonl', [
  ...firstLines(`${DATA}BFCL_v4_simple_python.json`, 3),
  ...firstLines(`${DATA}BFCL_v4_irrelevance.json`, 2),
]);
const answers = write('answers.jsonl', firstLines(`${DATA}possible_answer/BFCL_v4_simple_python.json`, 3));

describe('looptool score', () => {
  test('scores raw text, decoded lists and OpenAI tool_calls, prints accuracy per category and writes verdict lines', async () => {
    const predictions = write('predictions.jsonl', [
      JSON.stringify({ id: 'simple_python_0', result: '[calculate_triangle_area(base=10, height=5, unit="units")]' }),
      JSON.stringify({ id: 'simple_python_1', result: [{ 'math.factorial': { number: 5 } }] }),
      JSON.stringify({
        id: 'simple_python_2',
        result: [{ id: 'c', type: 'function', function: { name: 'math_hypot', arguments: '{"x": 4, "y": 5.0}' } }],
      }),
      JSON.stringify({ id: 'irrelevance_0', result: 'I cannot help with that.' }),
      JSON.stringify({ id: 'irrelevance_1', result: '[math.sum(numbers=[1.0, 2.0])]' }),
    ]);
    const out = join(dir, 'verdicts.jsonl');
    const result = await runLooptool([
      'score',
      '--questions',
      questions,
      '--answers',
      answers,
      '--predictions',
      predictions,
      '--out',
      out,
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/irrelevance\s+1\s+2\s+50\.00%/);
    expect(result.stdout).toMatch(/simple_python\s+2\s+3\s+66\.67%/);
    expect(result.stdout).toMatch(/all\s+3\s+5\s+60\.00%/);
    const verdicts = readFileSync(out, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(verdicts).toEqual([
      { id: 'simple_python_0', valid: true },
      { id: 'simple_python_1', valid: true },
      {
        id: 'simple_python_2',
        valid: false,
        error_type: 'type_error:simple',
        error: "Incorrect type for parameter 'y'. Expected type integer, got float. Parameter value: 5.0.",
      },
      { id: 'irrelevance_0', valid: true },
      {
        id: 'irrelevance_1',
        valid: false,
        error_type: 'irrelevance_error:decoder_success',
        error: 'Valid syntax. Successfully decode AST when it should not.',
      },
    ]);
  });

  test('irrelevance categories need no --answers; --category overrides the id prefix', async () => {
    const irrelevance = write('irr-questions.jsonl', firstLines(`${DATA}BFCL_v4_irrelevance.json`, 2));
    const predictions = write('irr-predictions.jsonl', [
      JSON.stringify({ id: 'irrelevance_0', result: '' }),
      JSON.stringify({ id: 'irrelevance_1', result: 'no tool fits' }),
    ]);
    const result = await runLooptool([
      'score',
      '--questions',
      irrelevance,
      '--predictions',
      predictions,
      '--category',
      'live_irrelevance',
    ]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/live_irrelevance\s+2\s+2\s+100\.00%/);
  });

  test('bad input exits 2 with file:line: field: reason, and writes no verdict file', async () => {
    const predictions = write('bad-predictions.jsonl', [
      JSON.stringify({ id: 'simple_python_0', result: '[calculate_triangle_area(base=10, height=5)]' }),
      '{"id": "simple_python_1", "result": ',
      JSON.stringify({ id: 'simple_python_99', result: '[]' }),
      JSON.stringify({ result: '[]' }),
    ]);
    const out = join(dir, 'never.jsonl');
    const result = await runLooptool([
      'score',
      '--questions',
      questions,
      '--answers',
      answers,
      '--predictions',
      predictions,
      '--out',
      out,
    ]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${predictions}:2: invalid JSON: unexpected end of input (column 37)`);
    expect(result.stderr).toContain(`${predictions}:3: id: simple_python_99 is not in ${questions}`);
    expect(result.stderr).toContain(`${predictions}:4: id: must be a non-empty string`);
    expect(result.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
  });

  test('an AST category without --answers is bad input located at the question', async () => {
    const predictions = write('no-answers.jsonl', [JSON.stringify({ id: 'simple_python_0', result: '[]' })]);
    const result = await runLooptool(['score', '--questions', questions, '--predictions', predictions]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${questions}:1: id: category simple_python needs --answers`);
  });

  test('a missing file is bad input', async () => {
    const result = await runLooptool(['score', '--questions', join(dir, 'nope.jsonl'), '--predictions', questions]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('nope.jsonl: cannot read: ENOENT');
  });
});
