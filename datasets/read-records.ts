import { createReadStream, readFileSync } from 'node:fs';
import { parseJson, type JsonValue } from '../core/json.js';
import type { LocatedRejection } from '../core/formats/rejection.js';

/** One JSON record read from a line of a JSONL file. */
export interface RecordItem {
  kind: 'record';
  file: string;
  line: number;
  value: JsonValue;
}

/** A line that could not be read as a record (bad JSON, too long), located for the person who has to fix it. */
export interface RejectedItem {
  kind: 'rejection';
  rejection: LocatedRejection;
}

export type ReadItem = RecordItem | RejectedItem;

export interface ReadRecordsOptions {
  /** Lines longer than this many characters are rejected without being held in memory. Defaults to 64 MiB. */
  maxLineChars?: number;
}

const DEFAULT_MAX_LINE_CHARS = 64 * 1024 * 1024;

/**
 * Streams a JSONL file record by record: memory stays flat however large the file, blank lines are skipped, and every
 * line that is not a JSON value comes back as a located rejection (file, line, reason with column) instead of ending
 * the stream. Numbers keep Python's int/float distinction (core/json.ts). A file that cannot be opened throws.
 */
export async function* readRecords(file: string, options: ReadRecordsOptions = {}): AsyncGenerator<ReadItem> {
  const maxLineChars = options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS;
  const stream = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 });
  let partial = '';
  let lineNumber = 0;
  let overlong = false;

  const finish = (text: string): ReadItem | undefined => {
    lineNumber++;
    if (overlong || text.length > maxLineChars) {
      overlong = false;
      return {
        kind: 'rejection',
        rejection: { file, line: lineNumber, field: '', reason: `line is longer than ${maxLineChars} characters` },
      };
    }
    let line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (lineNumber === 1 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.trim() === '') return undefined;
    const parsed = parseJson(line);
    if (parsed.ok) return { kind: 'record', file, line: lineNumber, value: parsed.value };
    return {
      kind: 'rejection',
      rejection: {
        file,
        line: lineNumber,
        field: '',
        reason: `invalid JSON: ${parsed.error.message} (column ${parsed.error.column})`,
      },
    };
  };

  for await (const chunk of stream as AsyncIterable<string>) {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf('\n', start);
      if (newline < 0) break;
      const piece = chunk.slice(start, newline);
      const item = finish(overlong ? '' : partial + piece);
      partial = '';
      if (item) yield item;
      start = newline + 1;
    }
    if (!overlong) {
      partial += chunk.slice(start);
      if (partial.length > maxLineChars) {
        overlong = true;
        partial = '';
      }
    }
  }
  if (partial !== '' || overlong) {
    const item = finish(overlong ? '' : partial);
    if (item) yield item;
  }
}

/**
 * A small JSONL file read whole (BFCL's data files, fixtures): every non-blank line parsed losslessly. Throws on the
 * first bad line, with file and line; use {@link readRecords} for user data, which must not stop at one bad line.
 */
export function readSmallJsonLines(file: string): JsonValue[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .flatMap((line, index) => {
      if (line.trim() === '') return [];
      const parsed = parseJson(line);
      if (!parsed.ok) throw new Error(`${file}:${index + 1}: ${parsed.error.message}`);
      return [parsed.value];
    });
}
