import { rename, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import { isJsonObject, type JsonValue } from '../../core/json.js';
import {
  bfclCheckKind,
  compileBfclQuestion,
  decodeBfclResult,
  scoreBfcl,
  type BfclCheckKind,
  type BfclDecoder,
  type CompiledBfclQuestion,
  type Verdict,
} from '../../core/checker/index.js';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  type BfclAnswer,
  type BfclQuestion,
} from '../../core/formats/bfcl.js';
import { categoryFromId } from '../../core/checker/categories.js';
import { formatRejection, locate, type LocatedRejection } from '../../core/formats/rejection.js';
import { writeJsonLines } from '../../datasets/writers.js';
import { readRecords } from '../../datasets/read-records.js';

/** Exit code for bad input (a file, a line or an option the user has to fix); 1 stays for unexpected failures. */
export const EXIT_BAD_INPUT = 2;

const DECODERS: readonly BfclDecoder[] = ['auto', 'python', 'hermes', 'json'];
const MAX_REPORTED = 20;

export interface ScoreOptions {
  questions: string;
  answers?: string;
  predictions: string;
  category?: string;
  out?: string;
  decoder: BfclDecoder;
}

/** One line of `--out`. */
export interface VerdictLine {
  id: string;
  valid: boolean;
  error_type?: string;
  error?: string;
}

/** Accuracy of one category. */
export interface CategoryScore {
  category: string;
  correct: number;
  total: number;
}

export type ScoreOutcome =
  { ok: true; categories: CategoryScore[]; unpredicted: number } | { ok: false; problems: LocatedRejection[] };

interface Located<T> {
  value: T;
  line: number;
}

async function readQuestions(file: string, problems: LocatedRejection[]): Promise<Map<string, Located<BfclQuestion>>> {
  const out = new Map<string, Located<BfclQuestion>>();
  for await (const item of readRecords(file)) {
    if (item.kind === 'rejection') {
      problems.push(item.rejection);
      continue;
    }
    const question = bfclQuestionFromRecord(item.value);
    if (!question.ok) problems.push(locate(question.rejection, item));
    else if (out.has(question.value.id))
      problems.push({ file, line: item.line, field: 'id', reason: `duplicate id ${question.value.id}` });
    else out.set(question.value.id, { value: question.value, line: item.line });
  }
  return out;
}

async function readAnswers(file: string, problems: LocatedRejection[]): Promise<Map<string, Located<BfclAnswer>>> {
  const out = new Map<string, Located<BfclAnswer>>();
  for await (const item of readRecords(file)) {
    if (item.kind === 'rejection') {
      problems.push(item.rejection);
      continue;
    }
    const answer = bfclAnswerFromRecord(item.value);
    if (!answer.ok) problems.push(locate(answer.rejection, item));
    else out.set(answer.value.id, { value: answer.value, line: item.line });
  }
  return out;
}

/**
 * Scores BFCL predictions: reads the question and possible-answer files, then streams the predictions, decoding each
 * `result` and checking it with the BFCL-exact checker. Bad input anywhere (unreadable lines, records that are not
 * BFCL's shape, unknown or repeated prediction ids, unsupported categories, missing answers) is collected with file,
 * line and field, and nothing is reported as scored. Verdict lines are written to `out` only when scoring succeeds.
 */
export async function scorePredictions(options: ScoreOptions): Promise<ScoreOutcome> {
  const problems: LocatedRejection[] = [];
  const questions = await readQuestions(options.questions, problems);
  const answers = options.answers
    ? await readAnswers(options.answers, problems)
    : new Map<string, Located<BfclAnswer>>();
  if (problems.length > 0) return { ok: false, problems };

  const compiled = new Map<string, { category: string; question?: CompiledBfclQuestion; error?: LocatedRejection }>();
  const compile = (id: string): { category: string; question?: CompiledBfclQuestion; error?: LocatedRejection } => {
    const cached = compiled.get(id);
    if (cached) return cached;
    const { value: question, line } = questions.get(id) as Located<BfclQuestion>;
    const category = options.category ?? categoryFromId(id);
    const kind: BfclCheckKind | undefined = bfclCheckKind(category);
    let entry: { category: string; question?: CompiledBfclQuestion; error?: LocatedRejection };
    if (!kind) {
      entry = {
        category,
        error: {
          file: options.questions,
          line,
          field: 'id',
          reason: `category ${category} is not scored by this checker (single-turn Python categories only)`,
        },
      };
    } else {
      const answer = answers.get(id);
      if (!answer && kind !== 'irrelevance' && kind !== 'relevance') {
        const reason = options.answers
          ? `no possible answer for ${id} in ${options.answers}`
          : `category ${category} needs --answers`;
        entry = { category, error: { file: options.questions, line, field: 'id', reason } };
      } else {
        const result = compileBfclQuestion({
          kind,
          functions: question.functions,
          possibleAnswer: answer?.value.calls,
        });
        entry = result.ok
          ? { category, question: result.question }
          : {
              category,
              error: {
                file: answer ? (options.answers as string) : options.questions,
                line: answer?.line ?? line,
                field: 'ground_truth',
                reason: result.error,
              },
            };
      }
    }
    compiled.set(id, entry);
    return entry;
  };

  const verdicts: VerdictLine[] = [];
  const scores = new Map<string, CategoryScore>();
  const seen = new Set<string>();
  for await (const item of readRecords(options.predictions)) {
    if (item.kind === 'rejection') {
      problems.push(item.rejection);
      continue;
    }
    const where = { file: item.file, line: item.line };
    const record = item.value;
    if (!isJsonObject(record)) {
      problems.push({ ...where, field: '', reason: 'a prediction must be an object {"id", "result"}' });
      continue;
    }
    const id = record.id;
    if (typeof id !== 'string' || id === '') {
      problems.push({ ...where, field: 'id', reason: 'must be a non-empty string' });
      continue;
    }
    if (!('result' in record)) {
      problems.push({ ...where, field: 'result', reason: 'is missing' });
      continue;
    }
    if (!questions.has(id)) {
      problems.push({ ...where, field: 'id', reason: `${id} is not in ${options.questions}` });
      continue;
    }
    if (seen.has(id)) {
      problems.push({ ...where, field: 'id', reason: `${id} is predicted twice` });
      continue;
    }
    seen.add(id);
    const entry = compile(id);
    if (entry.error) {
      problems.push(entry.error);
      continue;
    }
    const verdict: Verdict = scoreBfcl(
      entry.question as CompiledBfclQuestion,
      decodeBfclResult(record.result as JsonValue, options.decoder),
    );
    const score = scores.get(entry.category) ?? { category: entry.category, correct: 0, total: 0 };
    score.total++;
    if (verdict.valid) score.correct++;
    scores.set(entry.category, score);
    verdicts.push({
      id,
      valid: verdict.valid,
      ...(verdict.errorType !== undefined ? { error_type: verdict.errorType } : {}),
      ...(verdict.error !== undefined ? { error: verdict.error } : {}),
    });
  }
  if (problems.length > 0) return { ok: false, problems: dedupe(problems) };
  if (options.out) {
    // Written beside the target and renamed, so a failed run never leaves a half-written verdict file behind.
    const partial = `${options.out}.partial`;
    try {
      await writeJsonLines(partial, verdicts as unknown as JsonValue[]);
      await rename(partial, options.out);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }
  return { ok: true, categories: [...scores.values()], unpredicted: questions.size - seen.size };
}

function dedupe(problems: LocatedRejection[]): LocatedRejection[] {
  const seen = new Set<string>();
  return problems.filter((problem) => {
    const key = formatRejection(problem);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The accuracy table: one row per category, then all predictions together. */
export function formatScoreTable(categories: readonly CategoryScore[]): string {
  const rows = [...categories].sort((a, b) => a.category.localeCompare(b.category));
  const all = rows.reduce(
    (sum, row) => ({ category: 'all', correct: sum.correct + row.correct, total: sum.total + row.total }),
    { category: 'all', correct: 0, total: 0 },
  );
  const lines = [...rows, all].map((row) => [
    row.category,
    String(row.correct),
    String(row.total),
    `${((100 * row.correct) / Math.max(1, row.total)).toFixed(2)}%`,
  ]);
  const header = ['category', 'correct', 'total', 'accuracy'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] as string).length)));
  const format = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
      .join('  ');
  return [format(header), ...lines.slice(0, -1).map(format), format(lines.at(-1) as string[])].join('\n');
}

/**
 * `looptool score`: BFCL-exact scoring of a predictions file. Exit code 0 when scoring ran, 2 with located messages
 * (`file:line: field: reason`) on bad input.
 */
export function register(program: Command): void {
  program
    .command('score')
    .description('Score BFCL predictions with the BFCL-exact AST checker and print per-category accuracy')
    .requiredOption('--questions <file>', 'BFCL question file (JSONL: id, question, function)')
    .option('--answers <file>', 'BFCL possible-answer file (not needed for irrelevance categories)')
    .requiredOption(
      '--predictions <file>',
      'JSONL of {"id", "result"}: raw model text, [{name: {arg: value}}], or OpenAI tool_calls',
    )
    .option('--category <name>', "BFCL category for every prediction (default: from each id, e.g. 'simple_python')")
    .option('--out <file>', 'write one verdict per prediction: {"id", "valid", "error_type"?, "error"?}')
    .option('--decoder <name>', `how raw text is decoded: ${DECODERS.join(', ')}`, 'auto')
    .action(async (options: ScoreOptions) => {
      if (!DECODERS.includes(options.decoder)) {
        console.error(
          `--decoder: unknown decoder ${JSON.stringify(options.decoder)} (expected one of ${DECODERS.join(', ')})`,
        );
        process.exitCode = EXIT_BAD_INPUT;
        return;
      }
      let outcome: ScoreOutcome;
      try {
        outcome = await scorePredictions(options);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
          console.error(`${(err as NodeJS.ErrnoException).path ?? ''}: cannot read: ${code}`);
          process.exitCode = EXIT_BAD_INPUT;
          return;
        }
        throw err;
      }
      if (!outcome.ok) {
        for (const problem of outcome.problems.slice(0, MAX_REPORTED)) console.error(formatRejection(problem));
        if (outcome.problems.length > MAX_REPORTED)
          console.error(`… and ${outcome.problems.length - MAX_REPORTED} more problems`);
        console.error('Nothing was scored: fix the input above and run again.');
        process.exitCode = EXIT_BAD_INPUT;
        return;
      }
      console.log(formatScoreTable(outcome.categories));
      if (outcome.unpredicted > 0)
        console.error(`note: ${outcome.unpredicted} questions have no prediction and were not scored`);
    });
}
