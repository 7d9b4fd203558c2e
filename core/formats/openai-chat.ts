/**
 * OpenAI chat records, `{messages, tools}`: the form xLAM/APIGen exports and most SFT sets use, and, with arguments as
 * objects instead of JSON strings, TRL's conversational format. One record becomes one sample (the last assistant turn
 * is the target) or one sample per assistant turn.
 */
import { isJsonObject, parseJson, stringifyJson, type JsonObject, type JsonValue } from '../json.js';
import { FunctionDefinition } from '../schemas/function-def.js';
import { ChatMessage, type AssistantMessage } from '../schemas/messages.js';
import { keptPerSharedToolList, Sample, type Target } from '../schemas/sample.js';
import type { SplitMode } from '../vocabulary.js';
import { accept, parseWith, reject, type Converted } from './rejection.js';

/** Which assistant turns become samples: only the last message (which must be the assistant's), or every one. */
export type { SplitMode };

/** Reads a `tools` array: OpenAI wrappers (`{type: "function", function}`) or bare definitions. */
export function toolsFromJson(value: JsonValue | undefined, field = 'tools'): Converted<FunctionDefinition[]> {
  if (value === undefined || value === null) return accept([]);
  let list: JsonValue = value;
  if (typeof list === 'string') {
    // Some exports store the tool list as a JSON string.
    const parsed = parseJson(list);
    if (!parsed.ok) return reject(field, `is a string that is not JSON: ${parsed.error.message}`);
    list = parsed.value;
  }
  if (!Array.isArray(list)) return reject(field, 'must be an array of tools');
  const tools: FunctionDefinition[] = [];
  for (const [index, item] of list.entries()) {
    const definition =
      isJsonObject(item) && item.type === 'function' && isJsonObject(item.function) ? item.function : item;
    const where = definition === item ? `${field}[${index}]` : `${field}[${index}].function`;
    const parsed = parseWith(FunctionDefinition, definition, where);
    if (!parsed.ok) return parsed;
    tools.push(parsed.value);
  }
  return accept(tools);
}

function contentText(value: JsonValue | undefined, field: string): Converted<string | null> {
  if (value === undefined || value === null) return accept(null);
  if (typeof value === 'string') return accept(value);
  if (Array.isArray(value)) {
    // Content parts: only text can be represented in a sample.
    let text = '';
    for (const [index, part] of value.entries()) {
      if (!isJsonObject(part) || part.type !== 'text' || typeof part.text !== 'string')
        return reject(`${field}[${index}]`, 'only text content parts are supported');
      text += part.text;
    }
    return accept(text);
  }
  return reject(field, 'must be a string, null or a list of text parts');
}

/**
 * Reads one OpenAI-style message. Assistant `tool_calls[].function.arguments` may be the wire form (a JSON string,
 * parsed losslessly) or an object (TRL, Hugging Face chat templates).
 */
export function messageFromJson(value: JsonValue, field: string): Converted<ChatMessage> {
  if (!isJsonObject(value)) return reject(field, 'must be an object');
  const content = contentText(value.content, `${field}.content`);
  if (!content.ok) return content;
  const role = value.role;
  if (role === 'assistant') {
    const message: Record<string, unknown> = { role, content: content.value };
    if (typeof value.reasoning_content === 'string') message.reasoning_content = value.reasoning_content;
    const toolCalls = value.tool_calls;
    if (Array.isArray(toolCalls) && toolCalls.length > 0) {
      const calls: unknown[] = [];
      for (const [index, call] of toolCalls.entries()) {
        const where = `${field}.tool_calls[${index}]`;
        if (!isJsonObject(call) || !isJsonObject(call.function))
          return reject(where, 'must be {type: "function", function: {name, arguments}}');
        const args = argumentsFromJson(call.function.arguments, `${where}.function.arguments`);
        if (!args.ok) return args;
        const fn = { name: call.function.name, arguments: args.value };
        // Written out in both forms: properties after a leading spread take V8's slow path (about 0.7 µs each).
        calls.push(
          typeof call.id === 'string'
            ? { id: call.id, type: 'function', function: fn }
            : { type: 'function', function: fn },
        );
      }
      message.tool_calls = calls;
      // "" next to tool calls carries nothing; null is the canonical form, so both sources hash alike.
      if (message.content === '') message.content = null;
    }
    return parseWith(ChatMessage, message, field);
  }
  if (role === 'tool') {
    const message: Record<string, unknown> = { role, content: content.value ?? '' };
    if (typeof value.tool_call_id === 'string') message.tool_call_id = value.tool_call_id;
    if (typeof value.name === 'string') message.name = value.name;
    return parseWith(ChatMessage, message, field);
  }
  // A system or user message is its role and its text, which is what their schemas accept (core/schemas/messages.ts):
  // built here, it needs no second look (the schema's pass was a tenth of an import's conversion). Any other role is
  // left to the schema, which words the rejection.
  if (role === 'user' || role === 'system') return accept({ role, content: content.value ?? '' });
  return parseWith(ChatMessage, { role, content: content.value ?? '' }, field);
}

/** Tool-call arguments from a JSON string (OpenAI wire form, parsed keeping floats) or an object. */
export function argumentsFromJson(value: JsonValue | undefined, field: string): Converted<JsonObject> {
  if (typeof value === 'string') {
    const parsed = parseJson(value.trim() === '' ? '{}' : value);
    if (!parsed.ok) return reject(field, `is not valid JSON: ${parsed.error.message} (column ${parsed.error.column})`);
    if (!isJsonObject(parsed.value)) return reject(field, 'must be a JSON object');
    return accept(parsed.value);
  }
  if (isJsonObject(value)) return accept(value);
  return reject(field, 'must be a JSON object or a JSON string holding one');
}

/** The target an assistant message expresses: its tool calls, or its text (empty text means no reference answer). */
export function targetFromAssistant(message: AssistantMessage): Target {
  if (message.tool_calls && message.tool_calls.length > 0) {
    return {
      kind: 'calls',
      calls: message.tool_calls.map((call) => ({ name: call.function.name, arguments: call.function.arguments })),
    };
  }
  return message.content ? { kind: 'text', text: message.content } : { kind: 'text' };
}

/**
 * Builds samples from a full conversation: the last turn, or every assistant turn after at least one message. Each
 * sample is checked with the `Sample` schema, unless `checked` says each message was parsed with `ChatMessage` already
 * (OpenAI records, message by message): then nothing is left for the schema to find (the tools were checked by their
 * reader, a tool call's target is made of a checked assistant message's calls), and checking and copying every
 * message a second time was a tenth of an import's conversion.
 */
export function samplesFromConversation(input: {
  tools: FunctionDefinition[];
  messages: ChatMessage[];
  split: SplitMode;
  field?: string;
  checked?: boolean;
}): Converted<Sample[]> {
  const { tools, messages, split } = input;
  const field = input.field ?? 'messages';
  const indices: number[] = [];
  if (split === 'last') {
    const last = messages.length - 1;
    if (last < 1 || messages[last]?.role !== 'assistant')
      return reject(field, 'the last message must be an assistant turn that follows at least one message');
    indices.push(last);
  } else {
    messages.forEach((message, index) => {
      if (message.role === 'assistant' && index > 0) indices.push(index);
    });
    if (indices.length === 0) return reject(field, 'has no assistant turn after the first message');
  }
  const samples: Sample[] = [];
  for (const index of indices) {
    const target = targetFromAssistant(messages[index] as AssistantMessage);
    if (input.checked) {
      samples.push({ tools, messages: messages.slice(0, index), target });
      continue;
    }
    const parsed = parseWith(Sample, { tools, messages: messages.slice(0, index), target });
    if (!parsed.ok) return parsed;
    samples.push(parsed.value);
  }
  return accept(samples);
}

/**
 * Reads one OpenAI chat record (`{messages, tools}`) into samples. With `split: 'last'` (the default) the record is
 * one sample whose target is its final assistant turn; with `each`, one sample per assistant turn. `toolsOf` reads the
 * record's `tools` (default {@link toolsFromJson}): an importer passes one that reads each distinct list once and
 * shares it (datasets/openai-import.ts); it must give what `toolsFromJson` gives.
 */
export function openAiChatToSamples(
  record: JsonValue,
  options: {
    split?: SplitMode;
    toolsOf?: (value: JsonValue | undefined) => Converted<FunctionDefinition[]>;
  } = {},
): Converted<Sample[]> {
  if (!isJsonObject(record)) return reject('', 'a record must be a JSON object');
  const tools = (options.toolsOf ?? toolsFromJson)(record.tools);
  if (!tools.ok) return tools;
  if (!Array.isArray(record.messages)) return reject('messages', 'must be an array');
  const messages: ChatMessage[] = [];
  for (const [index, item] of record.messages.entries()) {
    const message = messageFromJson(item, `messages[${index}]`);
    if (!message.ok) return message;
    messages.push(message.value);
  }
  // Tools and messages were checked above, so the samples are not checked again, and each takes the list itself:
  // samples of one record (or of one shared list) hold one object.
  return samplesFromConversation({ tools: tools.value, messages, split: options.split ?? 'last', checked: true });
}

/** The target as the final assistant message; undefined for `acceptable` targets, which chat formats cannot express. */
export function targetToAssistant(target: Target): AssistantMessage | undefined {
  if (target.kind === 'acceptable') return undefined;
  if (target.kind === 'text') return { role: 'assistant', content: target.text ?? '' };
  return {
    role: 'assistant',
    content: null,
    tool_calls: target.calls.map((call) => ({
      type: 'function',
      function: { name: call.name, arguments: call.arguments },
    })),
  };
}

/** Arguments on the wire are JSON text; written here so floats stay floats (`5.0`). */
function withWireArguments(message: ChatMessage, asString: boolean): unknown {
  if (message.role !== 'assistant' || !message.tool_calls) return message;
  return {
    ...message,
    tool_calls: message.tool_calls.map((call) => ({
      ...call,
      function: {
        name: call.function.name,
        arguments: asString ? stringifyJson(call.function.arguments) : call.function.arguments,
      },
    })),
  };
}

/** A sample's chat turns as a record carries them: its messages plus the target as the final assistant turn. */
function chatMessages(sample: Sample, argumentsAsString: boolean): Converted<unknown[]> {
  const last = targetToAssistant(sample.target);
  if (!last) return reject('target', 'an acceptable-values target cannot be written as a chat turn');
  return accept([...sample.messages, last].map((message) => withWireArguments(message, argumentsAsString)));
}

/** Tools in OpenAI's wrapper, `{"type": "function", "function": …}`. */
function openAiTools(tools: readonly FunctionDefinition[]): unknown[] {
  return tools.map((tool) => ({ type: 'function', function: tool }));
}

function chatRecord(sample: Sample, argumentsAsString: boolean): Converted<JsonValue> {
  const messages = chatMessages(sample, argumentsAsString);
  if (!messages.ok) return messages;
  return accept({ messages: messages.value, tools: openAiTools(sample.tools) } as unknown as JsonValue);
}

/**
 * A sample as an OpenAI chat record: its messages plus the target as the final assistant turn, tool-call arguments as
 * JSON strings, tools in OpenAI's wrapper (names as written, BFCL types kept). Reading it back gives the same sample.
 */
export function sampleToOpenAiChat(sample: Sample): Converted<JsonValue> {
  return chatRecord(sample, true);
}

/** The wrapped tools' JSON text, kept per shared tool list. */
const openAiToolsText = keptPerSharedToolList((tools) => stringifyJson(openAiTools(tools)));

/**
 * {@link sampleToOpenAiChat}'s record as the JSON text `stringifyJson` writes of it (a JSONL export's line), the
 * tools' part written once per shared tool list: an export writes a few lists for thousands of samples, and the tools
 * are most of each line (writing them was over a third of an export's time).
 */
export function sampleToOpenAiChatLine(sample: Sample): Converted<string> {
  const messages = chatMessages(sample, true);
  if (!messages.ok) return messages;
  return accept(`{"messages":${stringifyJson(messages.value)},"tools":${openAiToolsText(sample.tools)}}`);
}
