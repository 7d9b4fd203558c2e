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
 * again. The list's text is found in the line without parsing it (a known list opening the line by its first
 * characters, {@link createLeadingListFinder}; any other by a scan, core/json.ts jsonMemberSpan), the line is parsed
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
  const leading = createLeadingListFinder();
  return (text) => {
    const span = leading.find(text) ?? jsonMemberSpan(text, 'tools');
    if (span !== undefined) {
      const rest = parseJson(`${text.slice(0, span.start)}null${text.slice(span.end)}`);
      if (rest.ok && isJsonObject(rest.value) && rest.value.tools === null) {
        const listText = text.slice(span.start, span.end);
        let tools = byText.get(listText);
        if (tools === undefined) {
          const list = parseJson(listText);
          if (list.ok) {
            tools = toolsOf(list.value);
            if (byText.size >= maxToolLists) {
              byText.clear();
              leading.clear();
            }
            // A copy: a slice of the line would keep the whole line alive as long as the cache holds the key.
            const copy = ` ${listText}`.slice(1);
            byText.set(copy, tools);
            leading.remember(copy);
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

/** How many first characters of a tool list's text {@link createLeadingListFinder} looks lists up by. */
const LEAD_CHARS = 64;
/** Lists kept per lead; more lists than this that begin alike are found by scanning the line. */
const LISTS_PER_LEAD = 8;

/**
 * Finds, without scanning the line, a tool list met before (`remember`) where records put it most: as the line's first
 * member (`{"tools": [...], "messages": ...}`). The line's text after `"tools":` is looked up by its first
 * {@link LEAD_CHARS} characters and compared with each remembered list of that lead in place. Scanning a line for where
 * its tool list ends (core/json.ts jsonMemberSpan) was a tenth of an import's CPU.
 *
 * A remembered list parsed as JSON, and a JSON value ends where its text ends: a line that holds the text there holds
 * that value there, so the span is the one a scan would find in any line that parses (whether it parses, the caller
 * checks as for a scanned span). A line whose rest could name `tools` again is left to the scan.
 */
export function createLeadingListFinder(): {
  find(text: string): { start: number; end: number } | undefined;
  remember(listText: string): void;
  clear(): void;
} {
  const byLead = new Map<string, string[]>();
  return {
    find(text) {
      if (byLead.size === 0) return undefined;
      let pos = skipWhitespace(text, 0);
      if (text.charCodeAt(pos) !== 0x7b || !text.startsWith('"tools"', (pos = skipWhitespace(text, pos + 1))))
        return undefined;
      pos = skipWhitespace(text, pos + 7);
      if (text.charCodeAt(pos) !== 0x3a) return undefined;
      const start = skipWhitespace(text, pos + 1);
      const lists = byLead.get(text.slice(start, start + LEAD_CHARS));
      if (lists === undefined) return undefined;
      for (const list of lists) {
        const end = start + list.length;
        // Compared as a slice: `startsWith` at an offset goes character by character, 10–50 times slower here.
        if (text.slice(start, end) !== list) continue;
        // A later member named `tools` (plainly or with a `\u` escape) would be the one that counts, and may read
        // `null` too: such a line is left to the scan, which finds every key.
        return text.indexOf('"tools"', end) < 0 && text.indexOf('\\u', end) < 0 ? { start, end } : undefined;
      }
      return undefined;
    },
    remember(listText) {
      // A shorter list's lead would take in what follows it in a line: it is found by scanning (cheap, being short).
      if (listText.length < LEAD_CHARS) return;
      const lead = listText.slice(0, LEAD_CHARS);
      const lists = byLead.get(lead);
      if (lists === undefined) byLead.set(lead, [listText]);
      else if (lists.length < LISTS_PER_LEAD) lists.push(listText);
    },
    clear() {
      byLead.clear();
    },
  };
}

function skipWhitespace(text: string, from: number): number {
  let pos = from;
  for (let c = text.charCodeAt(pos); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(++pos));
  return pos;
}
