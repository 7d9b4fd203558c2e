import { type Converted, openAiChatToSamples, toolsFromJson } from '../core/formats/index.js';
import { contentKey, isJsonObject, jsonMemberSpan, parseJson, type JsonValue } from '../core/json.js';
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import { type Sample, shareToolList } from '../core/schemas/sample.js';
import type { SplitMode } from '../core/vocabulary.js';
import { parseJsonLine } from './read-records.js';

/**
 * The tool-list reader an import of OpenAI chat records passes to core/formats/openai-chat.ts `openAiChatToSamples`
 * (`toolsOf`): what `toolsFromJson` gives, but each distinct list checked once and its samples sharing it
 * (core/schemas/sample.ts shareToolList, which also writes its canonical JSON once). Chat exports repeat a handful of
 * tool lists over thousands of records, and checking and writing the tools was over half of a record's conversion.
 *
 * A tool list is known by its content (core/json.ts contentKey: `5` and `5.0` stay apart); lists that are not plain
 * JSON are read each time. At most `maxToolLists` are kept (then the cache starts over), so memory stays flat on
 * files whose every record has its own tools.
 */
export function createToolListReader(
  options: { maxToolLists?: number } = {},
): (value: JsonValue | undefined) => Converted<FunctionDefinition[]> {
  const maxToolLists = options.maxToolLists ?? DEFAULT_MAX_TOOL_LISTS;
  const toolLists = new Map<string, Converted<FunctionDefinition[]>>();
  return (value) => {
    const key = contentKey(value);
    if (key === undefined) return toolsFromJson(value);
    let tools = toolLists.get(key);
    if (tools === undefined) {
      tools = toolsFromJson(value);
      if (tools.ok) shareToolList(tools.value);
      if (toolLists.size >= maxToolLists) toolLists.clear();
      toolLists.set(key, tools);
    }
    return tools;
  };
}

const DEFAULT_MAX_TOOL_LISTS = 1_000;

/**
 * The import's converter of OpenAI chat lines (JSONL text) to samples: what parsing the line and converting the record
 * with {@link createToolListReader} gives, rejections included, but a tool list met before is neither parsed nor keyed
 * again. The list's text is found in the line without parsing it (core/json.ts jsonMemberSpan), the line is parsed
 * with `null` in its place, and the converted list is looked up by that text. Parsing the list and writing its content
 * key had been nearly a third of an import's CPU when every record repeats one of a few lists.
 *
 * Exact: equal texts parse to equal lists, and the record with `null` for its tools is the record, whose `tools` is
 * then the list the text parses to (checked: the member still reads `null`). Anything else (no `tools` member, a line
 * that is not JSON, a list text that is not) takes the ordinary path, so rejections are worded and located as ever.
 */
export function createOpenAiLineConverter(options: {
  split: SplitMode;
  maxToolLists?: number;
}): (text: string) => Converted<Sample[]> {
  const maxToolLists = options.maxToolLists ?? DEFAULT_MAX_TOOL_LISTS;
  const toolsOf = createToolListReader({ maxToolLists });
  /** Converted tool lists by their text in the line. */
  const byText = new Map<string, Converted<FunctionDefinition[]>>();
  return (text) => {
    const span = jsonMemberSpan(text, 'tools');
    if (span !== undefined) {
      const rest = parseJson(`${text.slice(0, span.start)}null${text.slice(span.end)}`);
      if (rest.ok && isJsonObject(rest.value) && rest.value.tools === null) {
        const listText = text.slice(span.start, span.end);
        let tools = byText.get(listText);
        if (tools === undefined) {
          const list = parseJson(listText);
          if (list.ok) {
            tools = toolsOf(list.value);
            if (byText.size >= maxToolLists) byText.clear();
            // A copy: a slice of the line would keep the whole line alive as long as the cache holds the key.
            byText.set(` ${listText}`.slice(1), tools);
          }
        }
        if (tools !== undefined) {
          const known = tools;
          return openAiChatToSamples(rest.value, { split: options.split, toolsOf: () => known });
        }
      }
    }
    const record = parseJsonLine(text);
    if (!record.ok) return record;
    return openAiChatToSamples(record.value, { split: options.split, toolsOf });
  };
}
