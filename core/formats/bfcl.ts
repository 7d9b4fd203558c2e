/**
 * BFCL's single-turn data files, one record at a time: question records (`id`, `question`, `function`) and
 * possible-answer records (`id`, `ground_truth`), to and from samples.
 */
import { z } from 'zod';
import { isJsonObject, type JsonValue } from '../json.js';
import { categoryFromId } from '../checker/categories.js';
import { FunctionDefinition } from '../schemas/function-def.js';
import { ChatMessage } from '../schemas/messages.js';
import { Sample, type AcceptableTarget } from '../schemas/sample.js';
import { JsonValue as JsonValueSchema } from '../schemas/json-value.js';
import type { AcceptableCall } from '../schemas/tool-call.js';
import { accept, parseWith, reject, type Converted } from './rejection.js';

const BfclQuestionRecord = z.object({
  id: z.string().min(1),
  question: z.array(z.array(ChatMessage)).min(1),
  function: z.array(FunctionDefinition),
});

/** A BFCL question: its id, its category (from the id), the function docs and the conversation. */
export interface BfclQuestion {
  id: string;
  category: string;
  functions: FunctionDefinition[];
  messages: ChatMessage[];
}

/** A BFCL possible answer: the expected calls, each argument with its acceptable values. */
export interface BfclAnswer {
  id: string;
  calls: AcceptableCall[];
}

/**
 * Reads one question record. Only single-turn questions (`question` holding one turn) are accepted; multi-turn
 * categories need BFCL's state simulators, which this project does not port.
 */
export function bfclQuestionFromRecord(record: JsonValue): Converted<BfclQuestion> {
  const parsed = parseWith(BfclQuestionRecord, record);
  if (!parsed.ok) return parsed;
  const { id, question, function: functions } = parsed.value;
  if (question.length !== 1)
    return reject('question', `has ${question.length} turns; only single-turn questions are supported`);
  const messages = question[0] as ChatMessage[];
  if (messages.length === 0) return reject('question[0]', 'has no messages');
  return accept({ id, category: categoryFromId(id), functions, messages });
}

// An empty list of acceptable values is BFCL data too (live_simple has two): BFCL scores it (no value matches it, and
// leaving the parameter out is missing unless "" is listed), so it is read, not refused.
const GroundTruthEntry = z.record(z.string(), z.record(z.string(), z.array(JsonValueSchema)));
const BfclAnswerRecord = z.object({ id: z.string().min(1), ground_truth: z.array(GroundTruthEntry) });

/** Reads one possible-answer record: every `ground_truth` entry is `{functionName: {param: [acceptable…]}}`. */
export function bfclAnswerFromRecord(record: JsonValue): Converted<BfclAnswer> {
  const parsed = parseWith(BfclAnswerRecord, record);
  if (!parsed.ok) return parsed;
  const calls: AcceptableCall[] = [];
  for (const [index, entry] of parsed.value.ground_truth.entries()) {
    const names = Object.keys(entry);
    if (names.length !== 1)
      return reject(`ground_truth[${index}]`, `must name exactly one function, names ${names.length}`);
    const name = names[0] as string;
    if (name.length === 0) return reject(`ground_truth[${index}]`, 'has an empty function name');
    calls.push({ name, arguments: entry[name] as Record<string, JsonValue[]> });
  }
  return accept({ id: parsed.value.id, calls });
}

/**
 * A sample from a question and its possible answer: the answer's calls become an `acceptable` target; a question with
 * no answer (the irrelevance categories) gets a `text` target (no call expected).
 */
export function bfclToSample(input: { question: BfclQuestion; answer?: BfclAnswer }): Converted<Sample> {
  const { question, answer } = input;
  if (answer && answer.id !== question.id)
    return reject('id', `answer id ${answer.id} does not match question id ${question.id}`);
  if (!answer && !question.category.includes('irrelevance'))
    return reject('id', `${question.id} has no possible answer`);
  const target: Sample['target'] = answer
    ? ({ kind: 'acceptable', calls: answer.calls } satisfies AcceptableTarget)
    : { kind: 'text' };
  return parseWith(Sample, { tools: question.functions, messages: question.messages, target });
}

/**
 * A sample as BFCL records: the question record and, for `acceptable` and `calls` targets, the possible-answer record
 * (plain calls become one acceptable value per argument). Text targets have no answer record, as in BFCL.
 */
export function sampleToBfclRecords(input: { sample: Sample; id: string }): {
  question: JsonValue;
  answer?: JsonValue;
} {
  const { sample, id } = input;
  const question = { id, question: [sample.messages], function: sample.tools } as unknown as JsonValue;
  const target = sample.target;
  if (target.kind === 'text') return { question };
  const groundTruth =
    target.kind === 'acceptable'
      ? target.calls.map((call) => ({ [call.name]: call.arguments }))
      : target.calls.map((call) => ({
          [call.name]: Object.fromEntries(Object.entries(call.arguments).map(([k, v]) => [k, [v]])),
        }));
  return { question, answer: { id, ground_truth: groundTruth } as unknown as JsonValue };
}

/** Whether a JSON value looks like a BFCL possible-answer record (used to tell the two files apart in errors). */
export function isBfclAnswerRecord(record: JsonValue): boolean {
  return isJsonObject(record) && 'ground_truth' in record;
}
