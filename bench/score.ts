import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { formatTable } from '../client/format.js';
import { perSecond, type Figure } from './lib/figures.js';
import { firstValues, pythonText } from './lib/bfcl-predictions.js';
import { bfclAnswerFromRecord, bfclQuestionFromRecord, type BfclAnswer } from '../core/formats/bfcl.js';
import { JsonFloat, parseJson, type JsonValue } from '../core/json.js';
import type { ParsedCall } from '../core/parse/types.js';
import { type PyDict, type PyValue } from '../core/python.js';
import { ensurePythonEnv } from '../services/python-env.js';
import { projectPath } from '../services/paths.js';

/**
 * `score` section: whole-process wall time of `looptool score` against BFCL's own evaluation code scoring the same
 * files (`recipes/bfcl-eval/score.py`: BFCL's `load_file`, then `eval_runner`'s per-entry decode + `ast_checker`, one
 * process, one thread), per single-turn category of the installed bfcl-eval's data. Each category gets
 * `--predictions=N` predictions (default 100,000, the size issue 14 measured; with 3 runs the section takes about
 * 20 minutes on 2 cores) in BFCL's result-file format (`{"id", "result"}`, `result` a prompting model's Python-call text), cycling
 * over its questions: the possible answer's first acceptable values, or one of four deterministic perturbations (wrong
 * value, missing parameter, wrong function, extra call); (ir)relevance gets prose, `[]` and calls. BFCL allows one
 * prediction per id, so every prediction has its own question (and possible-answer) line, a copy of the original
 * under a new id: both sides read N questions. Each side runs `--runs=R` times (default 3), interleaved; the table has
 * the medians and compares the two verdict files (`valid` per id, then `error_type` where both are invalid). Target
 * (issue 14): looptool ≥ 10× BFCL. `--categories=a,b` picks categories; `--keep` leaves the temp files.
 */ const CATEGORIES = [
  'simple_python',
  'multiple',
  'parallel',
  'parallel_multiple',
  'live_simple',
  'live_multiple',
  'live_parallel',
  'live_parallel_multiple',
  'irrelevance',
  'live_irrelevance',
  'live_relevance',
] as const;
const TARGET = 10;
const LOOPTOOL_BIN = projectPath('bin', 'looptool.js');
const SCORE_PY = projectPath('recipes', 'bfcl-eval', 'score.py');

interface Options {
  predictions: number;
  runs: number;
  categories: string[];
  keep: boolean;
}

function options(argv: readonly string[] = process.argv.slice(2)): Options {
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const positive = (name: string, fallback: number): number => {
    const raw = value(name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${raw}`);
    return n;
  };
  const categories = value('categories')?.split(',').filter(Boolean) ?? [...CATEGORIES];
  const unknown = categories.filter((c) => !(CATEGORIES as readonly string[]).includes(c));
  if (unknown.length > 0) throw new Error(`--categories: unknown ${unknown.join(', ')}`);
  return {
    predictions: positive('predictions', 100_000),
    runs: positive('runs', 3),
    categories,
    keep: argv.includes('--keep'),
  };
}

function must<T>(result: { ok: true; value: T } | { ok: false; rejection: { field: string; reason: string } }): T {
  if (!result.ok) throw new Error(`${result.rejection.field}: ${result.rejection.reason}`);
  return result.value;
}

/** A data file's non-blank lines, raw (copied as they are, so `5.0` stays a float) and parsed. */
function lines(file: string): { raw: string; value: JsonValue }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((raw) => {
      const parsed = parseJson(raw);
      if (!parsed.ok) throw new Error(`${file}: ${parsed.error.message}`);
      return { raw, value: parsed.value };
    });
}

const LEADING_ID = /^\{\s*"id"\s*:\s*"[^"\\]*"/;

/** The record line with its id (BFCL writes it first) replaced. */
function withId(raw: string, id: string): string {
  if (!LEADING_ID.test(raw)) throw new Error(`record does not start with its id: ${raw.slice(0, 80)}`);
  return raw.replace(LEADING_ID, `{"id": ${JSON.stringify(id)}`);
}

function wrongValue(value: PyValue): PyValue {
  if (value === null) return 0;
  if (typeof value === 'boolean') return !value;
  if (typeof value === 'number') return value + 1;
  if (typeof value === 'string') return `${value}x`;
  if (value instanceof JsonFloat) return new JsonFloat(value.value + 0.5);
  if (Array.isArray(value)) return value.length > 0 ? value.slice(1) : ['x'];
  return Object.keys(value).length > 0 ? {} : { x: 1 };
}

const renamed = (calls: ParsedCall[]): ParsedCall[] =>
  calls.map((call, i) => (i === 0 ? { ...call, name: `${call.name}_wrong` } : call));

/**
 * Variant `variant` of a correct prediction: 0 and 1 correct, 2 a wrong value, 3 a missing parameter, 4 a wrong
 * function name, 5 an extra call (a change that cannot apply to a call without arguments renames it instead).
 */
function perturb(correct: ParsedCall[], variant: number): ParsedCall[] {
  const first = correct[0];
  if (!first || variant < 2) return correct;
  const [param] = Object.keys(first.arguments);
  if (variant === 4 || ((variant === 2 || variant === 3) && param === undefined)) return renamed(correct);
  if (variant === 5) return [...correct, first];
  const args: PyDict = { ...first.arguments };
  if (variant === 2) args[param as string] = wrongValue(args[param as string] as PyValue);
  else delete args[param as string];
  return [{ ...first, arguments: args }, ...correct.slice(1)];
}
const AST_VARIANTS = 6;

/**
 * For (ir)relevance: prose (Python decoding fails), an empty list, a call with a placeholder for each required
 * parameter, a call without arguments.
 */
function relevanceText(functions: readonly { name: string; parameters?: unknown }[], variant: number): string {
  const fn = functions[0];
  if (variant === 0 || !fn) return 'I cannot answer this with the functions I have.';
  if (variant === 1) return '[]';
  if (variant === 3) return `[${fn.name}()]`;
  const required = (fn.parameters as { required?: string[] } | undefined)?.required ?? [];
  return `[${fn.name}(${required.map((p) => `${p}='x'`).join(', ')})]`;
}
const RELEVANCE_VARIANTS = 4;

/** Buffered line writer (the larger files are hundreds of MB, over one JavaScript string's limit). */
function lineWriter(file: string): { write(line: string): void; close(): void } {
  const fd = openSync(file, 'w');
  let chunk: string[] = [];
  const flush = (): void => {
    if (chunk.length > 0) writeSync(fd, `${chunk.join('\n')}\n`);
    chunk = [];
  };
  return {
    write(line) {
      chunk.push(line);
      if (chunk.length >= 5_000) flush();
    },
    close() {
      flush();
      closeSync(fd);
    },
  };
}

interface Files {
  questions: string;
  answers?: string;
  predictions: string;
  count: number;
}

/** Writes a category's questions, possible answers and predictions (N of each, one question per prediction id). */
function buildFiles(dataDir: string, category: string, n: number, dir: string): Files {
  const questions = lines(path.join(dataDir, `BFCL_v4_${category}.json`));
  const relevance = category.includes('relevance');
  const answers = new Map<string, { raw: string; answer: BfclAnswer }>();
  if (!relevance)
    for (const line of lines(path.join(dataDir, 'possible_answer', `BFCL_v4_${category}.json`))) {
      const answer = must(bfclAnswerFromRecord(line.value));
      answers.set(answer.id, { raw: line.raw, answer });
    }
  const sources = questions.map((line) => {
    const question = must(bfclQuestionFromRecord(line.value));
    const answer = answers.get(question.id);
    if (!relevance && !answer) throw new Error(`${question.id}: no possible answer`);
    return { raw: line.raw, question, answer, correct: answer ? firstValues(answer.answer) : [] };
  });
  const files: Files = {
    questions: path.join(dir, `${category}.questions.jsonl`),
    answers: relevance ? undefined : path.join(dir, `${category}.answers.jsonl`),
    predictions: path.join(dir, `${category}.predictions.jsonl`),
    count: n,
  };
  const q = lineWriter(files.questions);
  const a = files.answers ? lineWriter(files.answers) : undefined;
  const p = lineWriter(files.predictions);
  for (let i = 0; i < n; i++) {
    const index = i % sources.length;
    const source = sources[index] as (typeof sources)[number];
    // Shifted by the pass over the questions, so each question gets every variant, whatever the counts.
    const pass = Math.floor(i / sources.length);
    const id = `${category}_${i}`;
    q.write(withId(source.raw, id));
    if (a && source.answer) a.write(withId(source.answer.raw, id));
    const result = relevance
      ? relevanceText(source.question.functions, (index + pass) % RELEVANCE_VARIANTS)
      : pythonText(perturb(source.correct, (index + pass) % AST_VARIANTS));
    p.write(JSON.stringify({ id, result }));
  }
  q.close();
  a?.close();
  p.close();
  return files;
}

/** Runs a command to its end; wall seconds from spawn to exit. Throws, with its stderr's tail, unless it exits 0. */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr = (stderr + data.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = (performance.now() - start) / 1000;
      if (code === 0) resolve(seconds);
      else reject(new Error(`${command} ${args.join(' ')} exited ${code}:\n${stderr}`));
    });
  });
}

interface VerdictRow {
  valid: boolean;
  error_type?: string | null;
}

function verdicts(file: string): Map<string, VerdictRow> {
  const out = new Map<string, VerdictRow>();
  for (const line of readFileSync(file, 'utf8').split('\n'))
    if (line.trim() !== '') {
      const row = JSON.parse(line) as VerdictRow & { id: string };
      out.set(row.id, row);
    }
  return out;
}

interface Agreement {
  valid: number;
  looptoolValid: number;
  validDiffs: string[];
  errorTypeDiffs: string[];
}

/** Compares the two verdict files id by id. */
function compare(looptoolOut: string, bfclOut: string, predictions: string): Agreement {
  const ours = verdicts(looptoolOut);
  const theirs = verdicts(bfclOut);
  const validDiffs: string[] = [];
  const errorTypeDiffs: string[] = [];
  let looptoolValid = 0;
  for (const [id, bfcl] of theirs) {
    const looptool = ours.get(id);
    if (looptool?.valid) looptoolValid++;
    if (!looptool || looptool.valid !== bfcl.valid) validDiffs.push(id);
    else if (!bfcl.valid && (looptool.error_type ?? null) !== (bfcl.error_type ?? null)) errorTypeDiffs.push(id);
  }
  for (const id of ours.keys()) if (!theirs.has(id)) validDiffs.push(id);
  if (validDiffs.length > 0 || errorTypeDiffs.length > 0) {
    // The first few differences with their predictions, to look at.
    const wanted = new Set([...validDiffs.slice(0, 3), ...errorTypeDiffs.slice(0, 3)]);
    for (const line of readFileSync(predictions, 'utf8').split('\n')) {
      if (wanted.size === 0) break;
      const id = /"id":"([^"]*)"/.exec(line)?.[1];
      if (!id || !wanted.has(id)) continue;
      wanted.delete(id);
      const o = ours.get(id);
      const t = theirs.get(id);
      const looptool = `looptool ${o?.valid} ${o?.error_type ?? ''}`;
      console.log(`   differs ${id}: ${looptool} | BFCL ${t?.valid} ${t?.error_type ?? ''} | ${line.slice(0, 300)}`);
    }
  }
  return { valid: theirs.size, looptoolValid, validDiffs, errorTypeDiffs };
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const rate = (n: number, seconds: number): string => Math.round(n / seconds).toLocaleString('en-US');

export async function run(): Promise<Figure[]> {
  const opts = options();
  const figures: Figure[] = [];
  const python = ensurePythonEnv('bfcl', { log: (line) => console.log(line) }).python;
  const located = spawnSync(
    python,
    ['-c', "import importlib.util; print(importlib.util.find_spec('bfcl_eval').submodule_search_locations[0])"],
    { encoding: 'utf8' },
  );
  if (located.status !== 0) throw new Error(`cannot locate bfcl_eval: ${located.stderr}`);
  const dataDir = path.join(located.stdout.trim(), 'data');
  const pythonVersion = spawnSync(python, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const cpus = os.cpus();
  console.log(
    `== score: looptool score vs BFCL's evaluation (bfcl-eval data), whole processes, median of ${opts.runs} run(s)`,
  );
  console.log(
    `machine: ${cpus.length} cores (${cpus[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `node ${process.version}, ${pythonVersion} (OMP_NUM_THREADS=1)`,
  );
  const pythonEnv: NodeJS.ProcessEnv = {
    ...process.env,
    OMP_NUM_THREADS: '1',
    OPENBLAS_NUM_THREADS: '1',
    MKL_NUM_THREADS: '1',
  };
  // Builds dist/ first when it is stale, so no timed run pays for it.
  await timed(process.execPath, [LOOPTOOL_BIN, '--help'], process.env);

  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bench-score-'));
  const rows: (string | number)[][] = [];
  let totalN = 0;
  let totalLooptool = 0;
  let totalBfcl = 0;
  let totalDiffs = 0;
  try {
    for (const category of opts.categories) {
      const files = buildFiles(dataDir, category, opts.predictions, scratch);
      const looptoolOut = path.join(scratch, `${category}.looptool.jsonl`);
      const bfclOut = path.join(scratch, `${category}.bfcl.jsonl`);
      const looptoolArgs = [
        LOOPTOOL_BIN,
        'score',
        '--questions',
        files.questions,
        ...(files.answers ? ['--answers', files.answers] : []),
        '--predictions',
        files.predictions,
        '--category',
        category,
        '--decoder',
        'python',
        '--out',
        looptoolOut,
      ];
      const bfclArgs = [
        SCORE_PY,
        '--category',
        category,
        '--questions',
        files.questions,
        ...(files.answers ? ['--answers', files.answers] : []),
        '--predictions',
        files.predictions,
        '--out',
        bfclOut,
      ];
      // Once, untimed: leaves `looptool score`'s V8 code cache as a scoring run makes it (scripts/build.js runBundle),
      // as it is after any earlier run; BFCL's side starts with its modules compiled (the .pyc files pip wrote).
      if (category === opts.categories[0]) await timed(process.execPath, looptoolArgs, process.env);
      const looptoolTimes: number[] = [];
      const bfclTimes: number[] = [];
      for (let r = 0; r < opts.runs; r++) {
        looptoolTimes.push(await timed(process.execPath, looptoolArgs, process.env));
        bfclTimes.push(await timed(python, bfclArgs, pythonEnv));
      }
      const agreement = compare(looptoolOut, bfclOut, files.predictions);
      const lt = median(looptoolTimes);
      const bf = median(bfclTimes);
      totalN += files.count;
      totalLooptool += lt;
      totalBfcl += bf;
      totalDiffs += agreement.validDiffs.length;
      rows.push([
        category,
        files.count,
        `${((100 * agreement.looptoolValid) / Math.max(1, agreement.valid)).toFixed(1)}%`,
        lt.toFixed(2),
        rate(files.count, lt),
        bf.toFixed(2),
        rate(files.count, bf),
        `${(bf / lt).toFixed(2)}×`,
        `≥ ${TARGET}×`,
        agreement.validDiffs.length === 0 ? 'identical' : `${agreement.validDiffs.length} differ`,
        agreement.errorTypeDiffs.length,
      ]);
      figures.push({
        section: 'score',
        figure: `${category}: looptool score vs BFCL's scorer (${files.count.toLocaleString('en-US')} predictions)`,
        value: `${(bf / lt).toFixed(2)}× (${perSecond(files.count, lt)} vs ${perSecond(files.count, bf)})`,
        target: `≥ ${TARGET}×, verdicts identical`,
        met: bf / lt >= TARGET && agreement.validDiffs.length === 0 && agreement.errorTypeDiffs.length === 0,
      });
      console.log(
        `   ${category}: ${files.count} predictions, looptool ${looptoolTimes.map((t) => t.toFixed(2)).join('/')} s, ` +
          `BFCL ${bfclTimes.map((t) => t.toFixed(2)).join('/')} s, ${agreement.validDiffs.length} valid differences, ` +
          `${agreement.errorTypeDiffs.length} error_type differences`,
      );
      if (!opts.keep)
        for (const file of [files.questions, files.answers, files.predictions, looptoolOut, bfclOut])
          if (file) rmSync(file, { force: true });
    }
  } finally {
    if (!opts.keep) rmSync(scratch, { recursive: true, force: true });
    else console.log(`files kept in ${scratch}`);
  }
  rows.push([
    'all',
    totalN,
    '',
    totalLooptool.toFixed(2),
    rate(totalN, totalLooptool),
    totalBfcl.toFixed(2),
    rate(totalN, totalBfcl),
    `${(totalBfcl / totalLooptool).toFixed(2)}×`,
    `≥ ${TARGET}×`,
    totalDiffs === 0 ? 'identical' : `${totalDiffs} differ`,
    '',
  ]);
  console.log(
    formatTable(
      [
        'category',
        'predictions',
        'valid',
        'looptool s',
        'looptool/s',
        'BFCL s',
        'BFCL/s',
        'ratio',
        'target',
        'verdicts (valid)',
        'error_type diffs',
      ],
      rows,
    ),
  );
  return figures;
}
