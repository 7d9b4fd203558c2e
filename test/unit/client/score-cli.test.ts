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

  test('threads and repeated questions give the verdict file one thread gives; an id predicted in two parts is bad input', async () => {
    // 300 predictions over copies of the three questions under new ids (each copy's content is read once), cycling
    // through a right answer and wrong ones so the verdicts differ line by line.
    const sources = firstLines(`${DATA}BFCL_v4_simple_python.json`, 3);
    const answerSources = firstLines(`${DATA}possible_answer/BFCL_v4_simple_python.json`, 3);
    const results = [
      '[calculate_triangle_area(base=10, height=5, unit="units")]',
      '[math.factorial(number=5)]',
      '[math.hypot(x=4, y=5)]',
      '[calculate_triangle_area(base=10.0, height=5)]',
      'not a call',
    ];
    const copies = Array.from({ length: 300 }, (_, i) => i);
    const copyQuestions = write(
      'copies-questions.jsonl',
      copies.map((i) => (sources[i % 3] as string).replace(/"id": "simple_python_\d+"/, `"id": "simple_python_${i}"`)),
    );
    const copyAnswers = write(
      'copies-answers.jsonl',
      copies.map((i) =>
        (answerSources[i % 3] as string).replace(/"id": "simple_python_\d+"/, `"id": "simple_python_${i}"`),
      ),
    );
    const predictionLines = copies.map((i) =>
      JSON.stringify({ id: `simple_python_${i}`, result: results[(i + Math.floor(i / 3)) % results.length] }),
    );
    const predictions = write('copies-predictions.jsonl', predictionLines);
    const verdicts: string[] = [];
    for (const threads of ['1', '3']) {
      const out = join(dir, `copies-verdicts-${threads}.jsonl`);
      const args = ['score', '--questions', copyQuestions, '--answers', copyAnswers, '--predictions', predictions];
      const result = await runLooptool([...args, '--out', out, '--threads', threads]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      verdicts.push(readFileSync(out, 'utf8'));
    }
    expect(verdicts[1]).toBe(verdicts[0]);
    const lines = (verdicts[0] as string).split('\n').filter(Boolean);
    expect(lines).toHaveLength(300);
    const valid = lines.filter((line) => (JSON.parse(line) as { valid: boolean }).valid).length;
    expect(valid).toBeGreaterThan(0);
    expect(valid).toBeLessThan(300);

    // The same id on line 2 and line 299: parts are scored apart, the repeat is still found, at its own line.
    const twice = write(
      'copies-twice.jsonl',
      predictionLines.map((line, i) => (i === 298 ? JSON.stringify({ id: 'simple_python_1', result: '[]' }) : line)),
    );
    const out = join(dir, 'copies-never.jsonl');
    const args = ['score', '--questions', copyQuestions, '--answers', copyAnswers, '--predictions', twice];
    const result = await runLooptool([...args, '--out', out, '--threads', '3']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${twice}:299: id: simple_python_1 is predicted twice`);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.partial`)).toBe(false);
    expect(existsSync(`${out}.partial.1`)).toBe(false);
  });

  test('a missing file is bad input', async () => {
    const result = await runLooptool(['score', '--questions', join(dir, 'nope.jsonl'), '--predictions', questions]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('nope.jsonl: cannot read: ENOENT');
  });
});
