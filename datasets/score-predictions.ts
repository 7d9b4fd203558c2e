import { closeSync, openSync, readSync, statSync, writeSync, appendFileSync, readFileSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { isJsonObject, parseJson, type JsonValue } from '../core/json.js';
import {
  bfclCheckKind,
  compileBfclQuestion,
  scoreBfclResult,
  type BfclCheckKind,
  type BfclDecoder,
  type CompiledBfclQuestion,
  type Verdict,
} from '../core/checker/index.js';
import { categoryFromId } from '../core/checker/categories.js';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  type BfclAnswer,
  type BfclQuestion,
} from '../core/formats/bfcl.js';
import { formatRejection, locate, type LocatedRejection } from '../core/formats/rejection.js';
import { scanLines, type LineBytes } from './line-scanner.js';
import { copyBytes, IdIndex } from './id-index.js';
import { leadingId, recordId, RepeatedRecords, type RecordRead } from './repeated-records.js';

export interface ScoreOptions {
  questions: string;
  answers?: string;
  predictions: string;
  category?: string;
  out?: string;
  decoder: BfclDecoder;
  /**
   * Threads that score parts of the predictions file (this one included). Default 1: each thread reads the questions
   * again, and on the 2-vCPU machine the benchmark runs on two threads each ran at half speed (no gain, a core's worth
   * of extra CPU); machines with cores to spare can ask for more.
   */
  threads?: number;
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

/** Verdict lines are written 64 KiB at a time. */
const VERDICT_BUFFER_BYTES = 1 << 16;
/** Distinct error tails of verdict lines kept (a few MB at most). */
const MAX_KNOWN_TAILS = 4096;

/**
 * A record file read by id: by the id's index (`IdIndex`), the line it is on, which distinct content it holds
 * (`RepeatedRecords`: equal numbers, equal conversions) and its value. Arrays by index, not an object per line.
 */
interface ById<T> {
  lines: number[];
  contents: number[];
  values: T[];
}

/** Every record of a file read through `records`; lines that cannot be read are problems, located. */
function scanRecords<T extends { id: string }>(
  file: string,
  records: RepeatedRecords<T>,
  problems: LocatedRejection[],
  onRecord: (read: Extract<RecordRead<T>, { ok: true }>, line: LineBytes) => void,
): void {
  scanLines(
    file,
    (line) => {
      const read = records.read(line);
      if (read.ok) onRecord(read, line);
      else problems.push(locate(read.rejection, { file, line: line.line }));
    },
    (rejection) => problems.push(rejection),
  );
}

/** Reads the question file: each id is added to `ids` (its index is its place in the arrays); a repeated id is a problem. */
function readQuestions(file: string, ids: IdIndex, problems: LocatedRejection[]): ById<BfclQuestion> {
  const records = new RepeatedRecords(bfclQuestionFromRecord);
  const questions: ById<BfclQuestion> = { lines: [], contents: [], values: [] };
  scanRecords(file, records, problems, (read, line) => {
    const index = read.id === undefined ? ids.add(line.bytes, read.idStart, read.idEnd) : ids.addId(read.id);
    if (index < 0) {
      problems.push({ file, line: line.line, field: 'id', reason: `duplicate id ${recordId(read, line)}` });
      return;
    }
    questions.lines.push(line.line);
    questions.contents.push(read.content);
    questions.values.push(read.value);
  });
  return questions;
}

/**
 * Reads the possible-answer file into arrays by question index (line -1: no answer); a later line for an id replaces
 * an earlier one. An answer whose id is no question's is never looked at, so it is not kept.
 */
function readAnswers(file: string, ids: IdIndex, problems: LocatedRejection[]): ById<BfclAnswer | undefined> {
  const records = new RepeatedRecords(bfclAnswerFromRecord);
  const answers: ById<BfclAnswer | undefined> = {
    lines: new Array<number>(ids.size).fill(-1),
    contents: new Array<number>(ids.size).fill(-1),
    values: new Array<BfclAnswer | undefined>(ids.size).fill(undefined),
  };
  scanRecords(file, records, problems, (read, line) => {
    const index = read.id === undefined ? ids.find(line.bytes, read.idStart, read.idEnd) : ids.findId(read.id);
    if (index < 0) return;
    answers.lines[index] = line.line;
    answers.contents[index] = read.content;
    answers.values[index] = read.value;
  });
  return answers;
}

/** A question ready to score, or why it cannot be (located by the caller, at the id's own lines). */
type Compiled =
  | { question: CompiledBfclQuestion; error?: undefined }
  | { question?: undefined; error: string; at: 'answer' | 'question' };

/** What one part of the predictions file gave: its problems, its scores, and the ids it scored in order. */
export interface PartResult {
  problems: LocatedRejection[];
  scores: CategoryScore[];
  /** How many ids the part scored. */
  predicted: number;
  /** With threads, every id predicted in the part and its line, so parts can find an id predicted in two of them. */
  ids: string[];
  lines: number[];
  /** Questions in the question file (the same for every part). */
  questionCount: number;
}

export interface PartInput {
  options: ScoreOptions;
  /** The part of the predictions file; undefined for the whole file. */
  range?: { start: number; end: number; firstLine: number };
  /** Where this part's verdict lines go. */
  verdicts?: string;
}

/**
 * Scores one part of the predictions file against the whole question and answer files: what a thread does. Questions
 * that share their content (function docs, conversation) and answers are parsed, validated and compiled once: the
 * compiled question is kept per (check kind, question content, answer content). Predictions are joined to questions
 * by the bytes of their ids (`IdIndex`), and verdict lines are written as bytes.
 */
export async function scorePart(input: PartInput): Promise<PartResult> {
  const { options } = input;
  const problems: LocatedRejection[] = [];
  const ids = new IdIndex();
  const questions = readQuestions(options.questions, ids, problems);
  const answers = options.answers ? readAnswers(options.answers, ids, problems) : undefined;
  const result: PartResult = { problems, scores: [], predicted: 0, ids: [], lines: [], questionCount: ids.size };
  const keepIds = input.range !== undefined;
  if (problems.length > 0) return result;

  const kinds = new Map<string, BfclCheckKind | undefined>();
  /** Compiled questions per check kind, by question content, then by answer content + 1 (0: no answer). */
  const compiledByKind = new Map<BfclCheckKind, Map<number, Compiled>[]>();
  /** The compiled question for a prediction's question, or the located reason it cannot be scored. */
  const compile = (
    index: number,
  ): { category: string; question: CompiledBfclQuestion } | { category: string; error: LocatedRejection } => {
    const category = options.category ?? categoryFromId(ids.id(index));
    let kind = kinds.get(category);
    if (kind === undefined && !kinds.has(category)) kinds.set(category, (kind = bfclCheckKind(category)));
    const line = questions.lines[index] as number;
    if (!kind) {
      const reason = `category ${category} is not scored by this checker (single-turn Python categories only)`;
      return { category, error: { file: options.questions, line, field: 'id', reason } };
    }
    const answer = answers?.values[index];
    if (!answer && kind !== 'irrelevance' && kind !== 'relevance') {
      const reason = options.answers
        ? `no possible answer for ${ids.id(index)} in ${options.answers}`
        : `category ${category} needs --answers`;
      return { category, error: { file: options.questions, line, field: 'id', reason } };
    }
    let byQuestion = compiledByKind.get(kind);
    if (!byQuestion) compiledByKind.set(kind, (byQuestion = []));
    const compiledHere = (byQuestion[questions.contents[index] as number] ??= new Map<number, Compiled>());
    const key = answer ? (answers?.contents[index] as number) + 1 : 0;
    let compiled = compiledHere.get(key);
    if (!compiled) {
      const made = compileBfclQuestion({
        kind,
        functions: (questions.values[index] as BfclQuestion).functions,
        possibleAnswer: answer?.calls,
      });
      compiled = made.ok ? { question: made.question } : { error: made.error, at: answer ? 'answer' : 'question' };
      compiledHere.set(key, compiled);
    }
    if (compiled.question) return { category, question: compiled.question };
    const atAnswer = compiled.at === 'answer' && answer !== undefined;
    return {
      category,
      error: {
        file: atAnswer ? (options.answers as string) : options.questions,
        line: atAnswer ? (answers?.lines[index] as number) : line,
        field: 'ground_truth',
        reason: compiled.error,
      },
    };
  };

  const verdicts = input.verdicts ? new VerdictWriter(openSync(input.verdicts, 'w')) : undefined;
  const scores = new Map<string, CategoryScore>();
  const predicted = new Uint8Array(ids.size);
  try {
    scanLines(
      options.predictions,
      (line) => {
        const file = options.predictions;
        const where = { file, line: line.line };
        let index: number;
        let prediction: JsonValue;
        const text = textPrediction(line.bytes, line.start, line.end);
        if (text) {
          index = ids.find(line.bytes, text.idStart, text.idEnd);
          if (index < 0) {
            const id = line.bytes.toString('latin1', text.idStart, text.idEnd);
            problems.push({ ...where, field: 'id', reason: `${id} is not in ${options.questions}` });
            return;
          }
          prediction = text.result;
        } else {
          const parsed = parseJson(line.bytes.toString('utf8', line.start, line.end));
          if (!parsed.ok) {
            const reason = `invalid JSON: ${parsed.error.message} (column ${parsed.error.column})`;
            problems.push({ ...where, field: '', reason });
            return;
          }
          const record = parsed.value;
          if (!isJsonObject(record)) {
            problems.push({ ...where, field: '', reason: 'a prediction must be an object {"id", "result"}' });
            return;
          }
          const id = record.id;
          if (typeof id !== 'string' || id === '') {
            problems.push({ ...where, field: 'id', reason: 'must be a non-empty string' });
            return;
          }
          if (!('result' in record)) {
            problems.push({ ...where, field: 'result', reason: 'is missing' });
            return;
          }
          index = ids.findId(id);
          if (index < 0) {
            problems.push({ ...where, field: 'id', reason: `${id} is not in ${options.questions}` });
            return;
          }
          prediction = record.result as JsonValue;
        }
        if (predicted[index] === 1) {
          problems.push({ ...where, field: 'id', reason: `${ids.id(index)} is predicted twice` });
          return;
        }
        predicted[index] = 1;
        result.predicted++;
        if (keepIds) {
          result.ids.push(ids.id(index));
          result.lines.push(line.line);
        }
        const entry = compile(index);
        if ('error' in entry) {
          problems.push(entry.error);
          return;
        }
        if (problems.length > 0) return; // nothing will be written or reported: only further problems matter
        const verdict = scoreBfclResult(entry.question, prediction, options.decoder);
        let score = scores.get(entry.category);
        if (!score) scores.set(entry.category, (score = { category: entry.category, correct: 0, total: 0 }));
        score.total++;
        if (verdict.valid) score.correct++;
        verdicts?.write(ids, index, verdict);
      },
      (rejection) => problems.push(rejection),
      input.range ? { range: input.range } : {},
    );
    verdicts?.flush();
  } finally {
    verdicts?.close();
  }
  result.scores = [...scores.values()];
  return result;
}

const VALID_TAIL = Buffer.from(',"valid":true}\n');
const INVALID = Buffer.from(',"valid":false');
const ID_HEAD = Buffer.from('{"id":');

/**
 * Verdict lines (`{"id", "valid", "error_type"?, "error"?}` in that order, as `JSON.stringify` of a {@link VerdictLine}
 * writes them) written as bytes into one buffer, written out when full: no string per line.
 */
class VerdictWriter {
  private readonly buffer = Buffer.allocUnsafe(VERDICT_BUFFER_BYTES);
  private used = 0;
  /**
   * `,"error_type":…,"error":…` by error type and error: most errors are one of a few messages (a checker's constants,
   * or the same wrong value in many predictions of one question), each quoted once. Up to {@link MAX_KNOWN_TAILS}.
   */
  private readonly tails = new Map<string | undefined, Map<string | undefined, string>>();
  private knownTails = 0;

  constructor(private readonly fd: number) {}

  write(ids: IdIndex, index: number, verdict: Verdict): void {
    const tail =
      verdict.errorType === undefined && verdict.error === undefined
        ? undefined
        : this.errorTail(verdict.errorType, verdict.error);
    // The most a line can take: a UTF-16 code unit is at most 3 UTF-8 bytes.
    const most = ID_HEAD.length + ids.jsonBytes(index) + INVALID.length + (tail?.length ?? 0) * 3 + 2;
    if (this.used + most > this.buffer.length) {
      this.flush();
      if (most > this.buffer.length) {
        writeSync(this.fd, this.line(ids, index, verdict, tail));
        return;
      }
    }
    const buffer = this.buffer;
    let at = this.used;
    at += copyBytes(ID_HEAD, 0, ID_HEAD.length, buffer, at);
    at += ids.writeJson(index, buffer, at);
    if (verdict.valid && tail === undefined) at += copyBytes(VALID_TAIL, 0, VALID_TAIL.length, buffer, at);
    else {
      if (verdict.valid) at += buffer.write(',"valid":true', at, 'latin1');
      else at += copyBytes(INVALID, 0, INVALID.length, buffer, at);
      if (tail !== undefined) at += buffer.write(tail, at, 'utf8');
      buffer[at++] = 0x7d;
      buffer[at++] = 0x0a;
    }
    this.used = at;
  }

  flush(): void {
    if (this.used > 0) writeSync(this.fd, this.buffer, 0, this.used);
    this.used = 0;
  }

  close(): void {
    closeSync(this.fd);
  }

  private errorTail(errorType: string | undefined, error: string | undefined): string {
    let byError = this.tails.get(errorType);
    if (!byError) this.tails.set(errorType, (byError = new Map()));
    const known = byError.get(error);
    if (known !== undefined) return known;
    let tail = errorType === undefined ? '' : `,"error_type":${JSON.stringify(errorType)}`;
    if (error !== undefined) tail += `,"error":${JSON.stringify(error)}`;
    if (this.knownTails < MAX_KNOWN_TAILS) {
      byError.set(error, tail);
      this.knownTails++;
    }
    return tail;
  }

  /** A line too long for the buffer, as a string. */
  private line(ids: IdIndex, index: number, verdict: Verdict, tail: string | undefined): string {
    return `{"id":${JSON.stringify(ids.id(index))},"valid":${verdict.valid}${tail ?? ''}}\n`;
  }
}

const RESULT_KEY = Buffer.from('"result"');

/**
 * The common prediction line, `{"id": "<ascii>", "result": "<text>"}`, read without the general parser: the id where
 * `leadingId` finds it, and the text decoded straight from its bytes when it holds no escape (else by `JSON.parse` of
 * its string literal: strings need no lossless care). Undefined for any other line (lists of calls, other keys, odd
 * spacing), which the general parser reads.
 */
function textPrediction(
  bytes: Buffer,
  start: number,
  end: number,
): { idStart: number; idEnd: number; result: string } | undefined {
  const lead = leadingId(bytes, start, end);
  if (!lead) return undefined;
  let i = lead.rest;
  while (bytes[i] === 0x20) i++;
  // Byte by byte: `Buffer#compare` checks its four offsets in JavaScript and calls into C++, more than eight bytes cost.
  for (let k = 0; k < RESULT_KEY.length; k++) if (bytes[i + k] !== RESULT_KEY[k]) return undefined;
  i += RESULT_KEY.length;
  while (bytes[i] === 0x20) i++;
  if (bytes[i++] !== 0x3a) return undefined;
  while (bytes[i] === 0x20) i++;
  let last = end - 1;
  while (bytes[last] === 0x20) last--;
  if (bytes[i] !== 0x22 || bytes[last] !== 0x7d) return undefined;
  last--;
  while (bytes[last] === 0x20) last--;
  if (bytes[last] !== 0x22 || last <= i) return undefined;
  const { idStart, idEnd } = lead;
  let plain = true;
  for (let k = i + 1; k < last; k++) {
    const b = bytes[k] as number;
    // A quote inside means more than one string (`"a", "b": "c"`); a backslash an escape; a control character is
    // invalid JSON. JSON.parse tells those apart.
    if (b === 0x22 || b === 0x5c || b < 0x20) {
      plain = false;
      break;
    }
  }
  // The scanner checked the line is UTF-8, so its text is the string's value.
  if (plain) return { idStart, idEnd, result: bytes.toString('utf8', i + 1, last) };
  try {
    const result: unknown = JSON.parse(bytes.toString('utf8', i, last + 1));
    return typeof result === 'string' ? { idStart, idEnd, result } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Where the predictions file is cut into `parts` pieces: each cut just after a newline, with the number of the line
 * that starts there. Fewer pieces come back when lines are too long to cut that finely.
 */
function cutPoints(file: string, parts: number): { start: number; end: number; firstLine: number }[] {
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  try {
    const ranges: { start: number; end: number; firstLine: number }[] = [];
    const buffer = Buffer.allocUnsafe(1 << 20);
    let start = 0;
    let firstLine = 1;
    let position = 0;
    let newlines = 0;
    for (let part = 1; part < parts; part++) {
      const target = Math.floor((size * part) / parts);
      if (target <= start) continue;
      // Count newlines up to the target, then find the next newline after it.
      let cut = -1;
      while (cut < 0 && position < size) {
        const read = readSync(fd, buffer, 0, buffer.length, position);
        if (read === 0) break;
        const view = buffer.subarray(0, read);
        let from = 0;
        for (;;) {
          const newline = view.indexOf(0x0a, from);
          if (newline < 0) break;
          newlines++;
          from = newline + 1;
          if (position + newline >= target) {
            cut = position + newline + 1;
            break;
          }
        }
        position += cut < 0 ? read : from;
      }
      if (cut < 0 || cut >= size) break;
      ranges.push({ start, end: cut, firstLine });
      start = cut;
      firstLine = newlines + 1;
    }
    ranges.push({ start, end: size, firstLine });
    return ranges;
  } finally {
    closeSync(fd);
  }
}

/** How many threads score the file. */
function threadsFor(options: ScoreOptions): number {
  // Threads run the compiled module (dist/); from TypeScript sources (tests in-process) there is no file to start.
  return import.meta.url.endsWith('.ts') ? 1 : (options.threads ?? 1);
}

/** Runs {@link scorePart} in a worker thread (datasets/score-worker.ts). */
function scoreInThread(input: PartInput): Promise<PartResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./score-worker.js', import.meta.url), { workerData: input });
    let settled = false;
    worker.once('message', (result: PartResult) => {
      settled = true;
      resolve(result);
    });
    worker.once('error', (err) => {
      settled = true;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the scoring thread exited with code ${code} before its result`));
    });
  });
}

/**
 * Scores BFCL predictions: reads the question and possible-answer files, then streams the predictions, decoding each
 * `result` and checking it with the BFCL-exact checker. Bad input anywhere (unreadable lines, records that are not
 * BFCL's shape, unknown or repeated prediction ids, unsupported categories, missing answers) is collected with file,
 * line and field, and nothing is reported as scored. Verdict lines are written to `out` only when scoring succeeds.
 *
 * A large predictions file is cut at newlines into parts scored by threads at once (each reads the questions and
 * answers itself; repeated contents make that cheap), and the parts' verdicts are joined in file order: the same file
 * as one thread writes.
 */
export async function scorePredictions(options: ScoreOptions): Promise<ScoreOutcome> {
  const threads = threadsFor(options);
  const ranges = threads > 1 ? cutPoints(options.predictions, threads) : [undefined];
  const partial = options.out ? `${options.out}.partial` : undefined;
  const verdictFiles = ranges.map((_, i) => (partial ? (i === 0 ? partial : `${partial}.${i}`) : undefined));
  try {
    const inputs = ranges.map((range, i): PartInput => ({ options, range, verdicts: verdictFiles[i] }));
    // The threads start first: this thread's part runs without yielding (its reads are synchronous), so a thread
    // started after it would start only when it is done.
    const others = inputs.slice(1).map(scoreInThread);
    const settled = await Promise.allSettled([scorePart(inputs[0] as PartInput), ...others]);
    // This thread's error first: a file that cannot be read fails here as it would without threads.
    const failed = settled.find((outcome) => outcome.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    const results = settled.map((outcome) => (outcome as PromiseFulfilledResult<PartResult>).value);
    const problems = results.flatMap((result) => result.problems);
    // An id predicted in two parts: the later line is the one predicting it twice.
    const seen = new Set<string>(results[0]?.ids);
    for (const result of results.slice(1))
      result.ids.forEach((id, i) => {
        if (seen.has(id))
          problems.push({
            file: options.predictions,
            line: result.lines[i] as number,
            field: 'id',
            reason: `${id} is predicted twice`,
          });
        seen.add(id);
      });
    if (problems.length > 0) {
      if (partial) await removeAll(verdictFiles);
      return { ok: false, problems: dedupe(problems) };
    }
    if (partial && options.out) {
      for (const part of verdictFiles.slice(1)) appendFileSync(partial, readFileSync(part as string));
      await removeAll(verdictFiles.slice(1));
      await rename(partial, options.out);
    }
    const scores = new Map<string, CategoryScore>();
    for (const score of results.flatMap((result) => result.scores)) {
      const sum = scores.get(score.category) ?? { category: score.category, correct: 0, total: 0 };
      sum.correct += score.correct;
      sum.total += score.total;
      scores.set(score.category, sum);
    }
    const predicted = results.reduce((sum, result) => sum + result.predicted, 0);
    return { ok: true, categories: [...scores.values()], unpredicted: (results[0]?.questionCount ?? 0) - predicted };
  } catch (err) {
    if (partial) await removeAll(verdictFiles);
    throw err;
  }
}

async function removeAll(files: readonly (string | undefined)[]): Promise<void> {
  for (const file of files) if (file) await rm(file, { force: true });
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
