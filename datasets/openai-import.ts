import { type Converted, toolsFromJson } from '../core/formats/index.js';
import { contentKey, type JsonValue } from '../core/json.js';
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import { shareToolList } from '../core/schemas/sample.js';

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
  const maxToolLists = options.maxToolLists ?? 1_000;
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
