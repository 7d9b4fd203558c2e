/**
 * The sim's knowledge of BFCL: the project's own question and possible-answer files (data/bfcl/), keyed by question
 * content, so the student, judge and validator know the truth for held-out evaluation questions as they know it for
 * the world's samples.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isJsonObject, parseJson, type JsonObject, type JsonValue } from '../core/json.js';
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
