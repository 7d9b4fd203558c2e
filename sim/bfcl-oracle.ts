/**
 * The sim's knowledge of BFCL: the project's own question and possible-answer files (data/bfcl/), keyed by question
 * content, so the student, judge and validator know the truth for held-out evaluation questions as they know it for
 * the world's samples.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { categoryFromId } from '../core/checker/categories.js';
import { isJsonObject, parseJson, type JsonObject, type JsonValue } from '../core/json.js';
import { parsePythonExpression, unparsePython, type PyNode } from '../core/parse/python-ast.js';
import { parsePythonCalls, pyToJson } from '../core/parse/python-calls.js';
import type { PyValue } from '../core/python.js';
import { bfclAnswerFromRecord, bfclQuestionFromRecord, type BfclAnswer } from '../core/formats/bfcl.js';
import { wireToolName, type FunctionDefinition, type ParameterSchema } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import type { AcceptableCall, ToolCall } from '../core/schemas/tool-call.js';
import { OPTIONAL_MARKER } from '../core/schemas/tool-call.js';
import { projectPath } from '../services/paths.js';

/** The project's BFCL data folder (found from the project root, so the same from the sources and from dist/). */
export const DEFAULT_BFCL_DIR = projectPath('data', 'bfcl');

/** One BFCL question as the oracle knows it. */
export interface BfclEntry {
  id: string;
  category: string;
  /** The question's functions as BFCL writes them (dotted names, BFCL types): the checker wants these. */
  functions: FunctionDefinition[];
  /** The acceptable answers, or none for irrelevance questions. */
  acceptable?: AcceptableCall[];
  /** One correct answer built from the first acceptable value of each argument (names in wire form), or no call. */
  answer: ToolCall[] | 'no_call';
}

/** The lookup key of a conversation: its non-system turns and the wire names of its tools. */
export function bfclKey(tools: readonly { name: string }[], messages: readonly ChatMessage[]): string {
  const turns = messages.filter((m) => m.role !== 'system').map((m) => `${m.role}\u0001${m.content ?? ''}`);
  const names = tools.map((t) => wireToolName(t.name)).sort();
  return `${turns.join('\u0002')}\u0003${names.join(',')}`;
}

function typeOf(schema: ParameterSchema | undefined): string | undefined {
  const type = schema?.type;
  return Array.isArray(type) ? type[0] : type;
}

/** One acceptable value as a concrete value: dicts in possible-answer form hold lists of acceptable values per key. */
function concrete(value: JsonValue, schema: ParameterSchema | undefined): JsonValue {
  const type = typeOf(schema);
  if ((type === 'dict' || type === 'object') && isJsonObject(value)) return concreteDict(value, schema?.properties);
  if ((type === 'array' || type === 'tuple') && Array.isArray(value)) {
    const itemType = typeOf(schema?.items);
    if (itemType === 'dict' || itemType === 'object')
      return value.map((item) => (isJsonObject(item) ? concreteDict(item, schema?.items?.properties) : item));
  }
  return value;
}

function concreteDict(value: JsonObject, properties: Record<string, ParameterSchema> | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [key, options] of Object.entries(value)) {
    if (!Array.isArray(options)) {
      out[key] = options;
      continue;
    }
    const first = options[0];
    if (first === undefined || first === OPTIONAL_MARKER) continue;
    out[key] = concrete(first, properties?.[key]);
  }
  return out;
}

/** A correct answer from possible answers: each argument's first acceptable value; optional-first ones left out. */
export function answerFromAcceptable(
  calls: readonly AcceptableCall[],
  functions: readonly FunctionDefinition[],
): ToolCall[] {
  return calls.map((call) => {
    const fn = functions.find((f) => f.name === call.name || wireToolName(f.name) === wireToolName(call.name));
    const properties = fn?.parameters?.properties ?? {};
    const args: JsonObject = {};
    for (const [param, options] of Object.entries(call.arguments)) {
      const first = options[0];
      if (first === undefined || first === OPTIONAL_MARKER) continue;
      args[param] = concrete(first, properties[param]);
    }
    return { name: wireToolName(call.name), arguments: args };
  });
}

/** BFCL's questions with their answers, looked up by content. */
export class BfclOracle {
  private constructor(private readonly entries: ReadonlyMap<string, BfclEntry>) {}

  /** Loads every `BFCL_v4_*.json` in the folder with its possible answers; a missing folder gives an empty oracle. */
  static load(dir: string = DEFAULT_BFCL_DIR): BfclOracle {
    const entries = new Map<string, BfclEntry>();
    if (!existsSync(dir)) return new BfclOracle(entries);
    for (const file of readdirSync(dir)
      .filter((f) => /^BFCL_.*\.json$/.test(f))
      .sort()) {
      const answers = new Map<string, BfclAnswer>();
      const answerFile = path.join(dir, 'possible_answer', file);
      if (existsSync(answerFile)) {
        for (const line of readFileSync(answerFile, 'utf8').split('\n')) {
          if (line.trim() === '') continue;
          const parsed = parseJson(line);
          const answer = parsed.ok ? bfclAnswerFromRecord(parsed.value) : undefined;
          if (answer?.ok) answers.set(answer.value.id, answer.value);
        }
      }
      for (const line of readFileSync(path.join(dir, file), 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        const parsed = parseJson(line);
        const question = parsed.ok ? bfclQuestionFromRecord(parsed.value) : undefined;
        if (!question?.ok) continue;
        const { id, category, functions, messages } = question.value;
        const answer = answers.get(id);
        if (!answer && !category.includes('irrelevance')) continue;
        const key = bfclKey(functions, messages);
        if (entries.has(key)) continue;
        entries.set(key, {
          id,
          category,
          functions,
          ...(answer ? { acceptable: answer.calls } : {}),
          answer: answer ? answerFromAcceptable(answer.calls, functions) : 'no_call',
        });
      }
    }
    return new BfclOracle(entries);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The question a conversation is, when it is one. */
  lookup(tools: readonly { name: string }[], messages: readonly ChatMessage[]): BfclEntry | undefined {
    return this.entries.get(bfclKey(tools, messages));
  }

  /** Every entry (tests check the oracle's answers with the BFCL checker). */
  all(): IterableIterator<BfclEntry> {
    return this.entries.values();
  }
}

/** BFCL's multi-turn categories (base, miss_func, miss_param, long_context), which the harness plays turn by turn. */
export interface MultiTurnEntry {
  id: string;
  category: string;
  /** Each turn's user messages; an empty turn is one where BFCL adds held-out functions and says so itself. */
  turns: string[][];
  /** The functions offered from the start (the involved classes' docs less the held-out ones), in BFCL's form. */
  functions: FunctionDefinition[];
  /** Held-out functions by the turn that adds them (miss_func). */
  added: Map<number, FunctionDefinition[]>;
  /** The true calls of each turn (an empty list: no call fits, say so instead). */
  calls: ToolCall[][];
}

/** Where a multi-turn conversation stands: its entry, the turn the last user message opened, calls made in it. */
export interface MultiTurnPosition {
  entry: MultiTurnEntry;
  turn: number;
  /** Whether the model already answered this turn with calls (their results follow the last user message). */
  calledThisTurn: boolean;
}

const MULTI_TURN_FILE = /^BFCL_v\d+_multi_turn_(base|miss_func|miss_param|long_context)\.json$/;

/**
 * What BFCL's harness says in a turn that adds held-out functions (`DEFAULT_USER_PROMPT_FOR_ADDITIONAL_FUNCTION_FC` in
 * bfcl_eval/constants/default_prompts.py; its prompting variant ends with the same words).
 */
const ADDED_FUNCTIONS_PROMPT = 'I have updated some more functions you can choose from. What about now?';

/**
 * Tool results this long come from a long-context backend (BFCL loads thousands of extra files, messages, ...), which is
 * all that tells a long_context question from the base one with the same words and tools, whose true calls differ
 * once a result shows the extra content.
 */
const LONG_CONTEXT_RESULT_CHARS = 2_000;

// The func-doc file of each backend class (bfcl_eval/constants/executable_backend_config.py).
const FUNC_DOC_FILES: Readonly<Record<string, string>> = {
  GorillaFileSystem: 'gorilla_file_system.json',
  MathAPI: 'math_api.json',
  MessageAPI: 'message_api.json',
  TwitterAPI: 'posting_api.json',
  TicketAPI: 'ticket_api.json',
  TradingBot: 'trading_bot.json',
  TravelAPI: 'travel_booking.json',
  VehicleControlAPI: 'vehicle_control.json',
};

function readJsonLines(file: string): JsonValue[] {
  const out: JsonValue[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const parsed = parseJson(line);
    if (parsed.ok) out.push(parsed.value);
  }
  return out;
}

/**
 * One ground-truth call string (`mv(source='a', destination='b')`, `sort('final_report.pdf')`) as a call with named
 * arguments: BFCL executes these strings as Python, positional arguments included, so those are named by the
 * function doc's parameter order (the backends' signatures). Undefined when it is no plain call.
 */
export function parseGroundTruthCall(text: string, functions: readonly FunctionDefinition[]): ToolCall | undefined {
  let node: PyNode;
  try {
    node = parsePythonExpression(text);
  } catch {
    return undefined;
  }
  if (node.k !== 'Call' || node.func.k !== 'Name') return undefined;
  const name = node.func.id;
  const params = Object.keys(functions.find((f) => f.name === name)?.parameters?.properties ?? {});
  const parts: string[] = [];
  for (const [index, arg] of node.args.entries()) {
    const param = params[index];
    if (param === undefined) return undefined;
    parts.push(`${param}=${unparsePython(arg)}`);
  }
  for (const keyword of node.keywords) {
    if (keyword.arg === null) return undefined;
    parts.push(`${keyword.arg}=${unparsePython(keyword.value)}`);
  }
  const parsed = parsePythonCalls(`[${name}(${parts.join(', ')})]`);
  if (!parsed.ok || parsed.calls.length !== 1) return undefined;
  const args: JsonObject = {};
  for (const [key, value] of Object.entries(parsed.calls[0]!.arguments)) {
    const json = pyToJson(value as PyValue);
    if (json === undefined) return undefined;
    args[key] = json;
  }
  return { name: wireToolName(name), arguments: args };
}

/** BFCL's multi-turn questions with their true calls per turn, looked up by the conversation so far. */
export class MultiTurnOracle {
  private constructor(private readonly byFirstMessage: ReadonlyMap<string, MultiTurnEntry[]>) {}

  /** Loads the multi-turn files of a BFCL data folder (bfcl-eval's `bfcl_eval/data/`); none there: an empty oracle. */
  static load(dir: string): MultiTurnOracle {
    const byFirst = new Map<string, MultiTurnEntry[]>();
    if (!existsSync(dir)) return new MultiTurnOracle(byFirst);
    const docs = new Map<string, FunctionDefinition[]>();
    const docsOf = (cls: string): FunctionDefinition[] => {
      let list = docs.get(cls);
      if (!list) {
        const file = FUNC_DOC_FILES[cls];
        const full = file ? path.join(dir, 'multi_turn_func_doc', file) : undefined;
        list = full && existsSync(full) ? (readJsonLines(full) as unknown as FunctionDefinition[]) : [];
        docs.set(cls, list);
      }
      return list;
    };
    for (const file of readdirSync(dir)
      .filter((f) => MULTI_TURN_FILE.test(f))
      .sort()) {
      const answerFile = path.join(dir, 'possible_answer', file);
      if (!existsSync(answerFile)) continue;
      const truths = new Map<string, string[][]>();
      for (const record of readJsonLines(answerFile)) {
        if (isJsonObject(record) && typeof record.id === 'string' && Array.isArray(record.ground_truth))
          truths.set(record.id, record.ground_truth as unknown as string[][]);
      }
      for (const record of readJsonLines(path.join(dir, file))) {
        if (!isJsonObject(record) || typeof record.id !== 'string' || !Array.isArray(record.question)) continue;
        const truth = truths.get(record.id);
        if (!truth) continue;
        const classes = Array.isArray(record.involved_classes) ? (record.involved_classes as string[]) : [];
        const all = classes.flatMap(docsOf);
        const missed = isJsonObject(record.missed_function) ? record.missed_function : {};
        const missedNames = new Set(Object.values(missed).flatMap((names) => (Array.isArray(names) ? names : [])));
        const added = new Map<number, FunctionDefinition[]>();
        for (const [turn, names] of Object.entries(missed))
          if (Array.isArray(names))
            added.set(
              Number(turn),
              all.filter((f) => names.includes(f.name)),
            );
        const turns = (record.question as JsonValue[]).map((turn) =>
          Array.isArray(turn)
            ? turn.flatMap((m) =>
                isJsonObject(m) && m.role === 'user' && typeof m.content === 'string' ? [m.content] : [],
              )
            : [],
        );
        const calls = truth.map((turn) =>
          turn.flatMap((text) => {
            const call = parseGroundTruthCall(text, all);
            return call ? [call] : [];
          }),
        );
        const first = turns[0]?.[0];
        if (first === undefined) continue;
        const entry: MultiTurnEntry = {
          id: record.id,
          category: categoryFromId(record.id),
          turns,
          functions: all.filter((f) => !missedNames.has(f.name)),
          added,
          calls,
        };
        byFirst.set(first, [...(byFirst.get(first) ?? []), entry]);
      }
    }
    return new MultiTurnOracle(byFirst);
  }

  get size(): number {
    let n = 0;
    for (const list of this.byFirstMessage.values()) n += list.length;
    return n;
  }

  /**
   * Where a conversation stands, when it is one of BFCL's multi-turn questions: the user messages so far must be the
   * entry's turns in order (a turn that adds functions matches whatever BFCL says then), and the tools offered must
   * be the entry's at that turn (which tells miss_func from base, whose words are the same).
   */
  lookup(tools: readonly { name: string }[], messages: readonly ChatMessage[]): MultiTurnPosition | undefined {
    const users = messages.flatMap((m, index) => (m.role === 'user' ? [{ index, content: m.content ?? '' }] : []));
    const first = users[0];
    if (!first) return undefined;
    const candidates = this.byFirstMessage.get(first.content);
    if (!candidates) return undefined;
    const offered = new Set(tools.map((t) => wireToolName(t.name)));
    const longResults = messages.some((m) => m.role === 'tool' && (m.content ?? '').length > LONG_CONTEXT_RESULT_CHARS);
    const ordered = [...candidates].sort(
      (a, b) =>
        Number(longResults !== (a.category === 'multi_turn_long_context')) -
        Number(longResults !== (b.category === 'multi_turn_long_context')),
    );
    for (const entry of ordered) {
      let turn = -1;
      let matched = 0;
      const functions = [...entry.functions];
      for (let t = 0; t < entry.turns.length && matched < users.length; t++) {
        const expected = entry.turns[t]!;
        const added = entry.added.get(t);
        if (added) functions.push(...added);
        const wanted = expected.length === 0 ? 1 : expected.length;
        let ok = true;
        for (let i = 0; i < wanted; i++) {
          const user = users[matched + i];
          if (user === undefined) break;
          if (expected.length > 0 ? user.content !== expected[i] : !user.content.endsWith(ADDED_FUNCTIONS_PROMPT))
            ok = false;
        }
        if (!ok) break;
        matched += wanted;
        turn = t;
      }
      if (turn < 0 || matched < users.length) continue;
      const names = new Set(functions.map((f) => wireToolName(f.name)));
      if (names.size !== offered.size || [...names].some((n) => !offered.has(n))) continue;
      const last = users[users.length - 1]!;
      const calledThisTurn = messages.slice(last.index + 1).some((m) => m.role === 'tool');
      return { entry, turn, calledThisTurn };
    }
    return undefined;
  }
}
