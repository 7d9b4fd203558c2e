import { fileURLToPath } from 'node:url';
import {
  bfclCheckKind,
  checkBfcl,
  checkExact,
  compileBfclQuestion,
  compileExactTarget,
  decodeBfclText,
  scoreBfcl,
  type CompiledBfclQuestion,
} from '../core/checker/index.js';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  type BfclAnswer,
  type BfclQuestion,
} from '../core/formats/bfcl.js';
import type { JsonValue } from '../core/json.js';
import type { ParsedCall, ParseResult } from '../core/parse/types.js';
import { parseModelOutput } from '../core/parse/model-output.js';
import { parsePythonCalls, parsePythonCallsFull } from '../core/parse/python-calls.js';
import { firstValues, pythonText } from './lib/bfcl-predictions.js';
import { perSecond, type Figure } from './lib/figures.js';
import { formatMeasurements, measure, type Measurement } from './lib/measure.js';
import { readSmallJsonLines } from '../datasets/read-records.js';

const DATA = fileURLToPath(new URL('../data/bfcl/', import.meta.url));
const CATEGORIES = ['simple_python', 'multiple', 'parallel', 'parallel_multiple', 'irrelevance'] as const;

const records = readSmallJsonLines;

function must<T>(result: { ok: true; value: T } | { ok: false; rejection: { field: string; reason: string } }): T {
  if (!result.ok) throw new Error(`${result.rejection.field}: ${result.rejection.reason}`);
  return result.value;
}

interface Workload {
  question: CompiledBfclQuestion;
  decoded: ParsedCall[];
  text: string;
  questionRecord: BfclQuestion;
  answer: BfclAnswer | undefined;
}

/** `core` section: BFCL checker throughput on the BFCL data, per category, single core, after a warm-up. */
export function run(): Figure[] {
  const rows: Measurement[] = [];
  const all: Workload[] = [];
  for (const category of CATEGORIES) {
    const questions = records(`${DATA}BFCL_v4_${category}.json`).map((r) => must(bfclQuestionFromRecord(r)));
    const answers = new Map<string, BfclAnswer>();
    if (category !== 'irrelevance') {
      for (const r of records(`${DATA}possible_answer/BFCL_v4_${category}.json`)) {
        const answer = must(bfclAnswerFromRecord(r));
        answers.set(answer.id, answer);
      }
    }
    const kind = bfclCheckKind(category);
    if (!kind) throw new Error(`no checker for ${category}`);
    const workloads: Workload[] = questions.map((q) => {
      const answer = answers.get(q.id);
      const compiled = compileBfclQuestion({ kind, functions: q.functions, possibleAnswer: answer?.calls });
      if (!compiled.ok) throw new Error(compiled.error);
      const decoded = firstValues(answer);
      return { question: compiled.question, decoded, text: pythonText(decoded), questionRecord: q, answer };
    });
    all.push(...workloads);
    rows.push(measure(`${category}: check (decoded calls)`, workloads, (w) => checkBfcl(w.question, w.decoded).valid));
    rows.push(
      measure(
        `${category}: decode + check (Python text)`,
        workloads,
        (w) => scoreBfcl(w.question, decodeBfclText(w.text, 'python')).valid,
      ),
    );
  }
  // The Python decoder alone: the literal fast path (which every BFCL possible answer takes) and the full
  // expression parser it falls back to for anything else.
  rows.push(measure('all: decode Python text (fast path)', all, (w) => parsePythonCalls(w.text).ok));
  rows.push(measure('all: decode Python text (full parser only)', all, (w) => parsePythonCallsFull(w.text).ok));
  rows.push(
    measure('all: compile + check', all, (w) => {
      const kind = w.answer ? w.question.kind : 'irrelevance';
      const compiled = compileBfclQuestion({
        kind,
        functions: w.questionRecord.functions,
        possibleAnswer: w.answer?.calls,
      });
      return compiled.ok && checkBfcl(compiled.question, w.decoded).valid;
    }),
  );
  const exact = all
    .filter((w) => w.decoded.length > 0)
    .map((w) => {
      const calls = w.decoded.map((call) => ({
        name: call.name,
        arguments: call.arguments as Record<string, JsonValue>,
      }));
      const parsed: ParseResult = { ok: true, format: 'python', calls: w.decoded };
      return {
        target: compileExactTarget({ target: { kind: 'calls', calls }, tools: w.questionRecord.functions }),
        parsed,
        text: w.text,
      };
    });
  rows.push(measure('all: exact match (parsed calls)', exact, (e) => checkExact(e.target, e.parsed).valid));
  rows.push(
    measure(
      'all: exact match (parse Python text + match)',
      exact,
      (e) => checkExact(e.target, parseModelOutput(e.text)).valid,
    ),
  );
  console.log(formatMeasurements('core: BFCL checker (BFCL v4 data, one core)', rows));
  // For information: the checker's own speed, which `score` compares with BFCL as a whole program.
  return rows
    .filter((row) => row.name.includes('decode + check'))
    .map((row) => ({
      section: 'core',
      figure: `${row.name}, one core`,
      value: perSecond(row.operations, row.seconds),
      target: '(information)',
    }));
}
