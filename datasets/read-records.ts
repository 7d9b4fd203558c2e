import { isUtf8 } from 'node:buffer';
import { createReadStream, readFileSync } from 'node:fs';
import { parseJson, type JsonValue } from '../core/json.js';
import type { Converted, LocatedRejection } from '../core/formats/rejection.js';

/** One JSON record read from a line of a JSONL file. */
export interface RecordItem {
  kind: 'record';
  file: string;
  line: number;
  value: JsonValue;
}

/** A line that could not be read as a record (bad JSON, too long, not UTF-8), located for the person who fixes it. */
export interface RejectedItem {
  kind: 'rejection';
  rejection: LocatedRejection;
}

export type ReadItem = RecordItem | RejectedItem;

/** One non-blank line of a JSONL file as text (UTF-8 checked, without its newline, a trailing `\r` or a BOM). */
export interface LineItem {
  kind: 'line';
  file: string;
  line: number;
  text: string;
}

export type ReadLineItem = LineItem | RejectedItem;

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
  for await (const item of readLines(file, options)) yield item.kind === 'line' ? recordOf(item) : item;
}

/** A line's record, or the located rejection of a line that is not JSON (what {@link readRecords} gives for it). */
function recordOf(item: LineItem): RecordItem | RejectedItem {
  const parsed = parseJsonLine(item.text);
  return parsed.ok
    ? { kind: 'record', file: item.file, line: item.line, value: parsed.value }
    : { kind: 'rejection', rejection: { file: item.file, line: item.line, ...parsed.rejection } };
}

/** A line's JSON value, or the rejection (no file or line yet) of a line that is not JSON. */
export function parseJsonLine(text: string): Converted<JsonValue> {
  const parsed = parseJson(text);
  if (parsed.ok) return parsed;
  return {
    ok: false,
    rejection: { field: '', reason: `invalid JSON: ${parsed.error.message} (column ${parsed.error.column})` },
  };
}

/**
 * The lines of a JSONL file as text, for readers that look at a line before parsing it ({@link readRecords} parses
 * each; an OpenAI import finds a record's tool list in its text first: datasets/openai-import.ts). Memory stays flat
 * however large the file, blank lines are skipped, and a line that is too long or not UTF-8 comes back as a located
 * rejection instead of ending the stream. A file that cannot be opened throws.
 *
 * Lines are split as bytes and each is checked to be UTF-8 before it is decoded: a decoder would silently turn bad
 * bytes into U+FFFD and the sample would be stored with text its author never wrote. A line that is not UTF-8 is
 * rejected with the offset of its first bad byte, in the line and in the file (both counted from 0, as `xxd -s` and
 * `dd skip=` count), so the person can find it.
 */
export async function* readLines(file: string, options: ReadRecordsOptions = {}): AsyncGenerator<ReadLineItem> {
  const maxLineChars = options.maxLineChars ?? DEFAULT_MAX_LINE_CHARS;
  const stream = createReadStream(file, { highWaterMark: 1 << 16 });
  /** The bytes of the line read so far, when it spans chunks. */
  let parts: Buffer[] = [];
  let partBytes = 0;
  /** UTF-16 length of `parts`, counted only once the bytes alone could exceed the limit (long lines are rare). */
  let partChars: number | undefined;
  let overlong = false;
  let lineNumber = 0;
  /** File offset of the current line's first byte, and of the current chunk's. */
  let lineStart = 0;
  let chunkStart = 0;

  const rejection = (reason: string): RejectedItem => ({
    kind: 'rejection',
    rejection: { file, line: lineNumber, field: '', reason },
  });

  /** A line's text once its bytes are known to be UTF-8. */
  const finishText = (text: string): ReadLineItem | undefined => {
    if (text.length > maxLineChars) return rejection(`line is longer than ${maxLineChars} characters`);
    let line = text.endsWith('\r') ? text.slice(0, -1) : text;
    if (lineNumber === 1 && line.startsWith('\uFEFF')) line = line.slice(1);
    if (line.trim() === '') return undefined;
    return { kind: 'line', file, line: lineNumber, text: line };
  };

  /** A line's bytes (undefined: too long, dropped unread), `start` being its offset in the file. */
  const finish = (bytes: Buffer | undefined, start: number): ReadLineItem | undefined => {
    lineNumber++;
    if (bytes === undefined) return rejection(`line is longer than ${maxLineChars} characters`);
    if (!isUtf8(bytes)) {
      const at = firstInvalidUtf8(bytes);
      return rejection(`invalid UTF-8 at byte ${at} of the line (file byte ${start + at})`);
    }
    return finishText(bytes.toString('utf8'));
  };

  /** Adds a piece to the partial line, dropping it once it is certainly longer than the limit. */
  const grow = (piece: Buffer) => {
    if (overlong) return;
    partBytes += piece.length;
    // A UTF-16 code unit takes at least one UTF-8 byte, so below the limit in bytes the line is below it in characters.
    if (partBytes > maxLineChars) {
      partChars = (partChars ?? parts.reduce((n, part) => n + utf16Length(part), 0)) + utf16Length(piece);
      if (partChars > maxLineChars) {
        overlong = true;
        parts = [];
        return;
      }
    }
    parts.push(piece);
  };

  /** Whole lines `region` holds (each ended by a newline), one by one: for regions that are not all UTF-8. */
  function* lineByLine(region: Buffer, regionStart: number): Generator<ReadLineItem> {
    let start = 0;
    for (;;) {
      const newline = region.indexOf(0x0a, start);
      if (newline < 0) return;
      let bytes: Buffer | undefined = region.subarray(start, newline);
      if (bytes.length > maxLineChars && utf16Length(bytes) > maxLineChars) bytes = undefined;
      const item = finish(bytes, regionStart + start);
      if (item) yield item;
      start = newline + 1;
    }
  }

  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const first = chunk.indexOf(0x0a);
    if (first < 0) {
      // A copy: the partial line is kept across reads, and the stream owns the chunk's memory.
      grow(Buffer.from(chunk));
      chunkStart += chunk.length;
      continue;
    }
    // The line the previous chunks started ends at the first newline.
    let head: Buffer | undefined;
    if (parts.length === 0 && !overlong) head = chunk.subarray(0, first);
    else {
      grow(chunk.subarray(0, first));
      head = overlong ? undefined : Buffer.concat(parts, partBytes);
    }
    if (head !== undefined && head.length > maxLineChars && utf16Length(head) > maxLineChars) head = undefined;
    const headItem = finish(head, lineStart);
    parts = [];
    partBytes = 0;
    partChars = undefined;
    overlong = false;
    if (headItem) yield headItem;

    // The whole lines after it: checked as UTF-8 in one call and decoded at once, the common case kept as fast as
    // decoding the stream; a region with a bad byte is gone through line by line to find and locate it.
    const last = chunk.lastIndexOf(0x0a);
    if (last > first) {
      const region = chunk.subarray(first + 1, last + 1);
      if (isUtf8(region)) {
        const text = region.toString('utf8');
        let start = 0;
        for (;;) {
          const newline = text.indexOf('\n', start);
          if (newline < 0) break;
          lineNumber++;
          const item = finishText(text.slice(start, newline));
          if (item) yield item;
          start = newline + 1;
        }
      } else {
        yield* lineByLine(region, chunkStart + first + 1);
      }
    }
    lineStart = chunkStart + last + 1;
    if (last + 1 < chunk.length) grow(Buffer.from(chunk.subarray(last + 1)));
    chunkStart += chunk.length;
  }
  if (parts.length > 0 || overlong) {
    const item = finish(overlong ? undefined : Buffer.concat(parts, partBytes), lineStart);
    if (item) yield item;
  }
}

/** The number of UTF-16 code units (JavaScript string length) of UTF-8 bytes: one per lead byte, two for 4-byte ones. */
function utf16Length(bytes: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if ((b & 0xc0) !== 0x80) n += b >= 0xf0 ? 2 : 1;
  }
  return n;
}

/**
 * The offset of the first byte that does not start a well-formed UTF-8 sequence (Unicode Table 3-7: no overlong
 * forms, no surrogates, nothing above U+10FFFF, no truncated sequence), or -1 when every byte is well-formed.
 */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) lo = 0xa0;
      else if (b === 0xed) hi = 0x9f;
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) lo = 0x90;
      else if (b === 0xf4) hi = 0x8f;
    } else return i;
    if (i + length > bytes.length) return i;
    const second = bytes[i + 1]!;
    if (second < lo || second > hi) return i;
    for (let k = 2; k < length; k++) if ((bytes[i + k]! & 0xc0) !== 0x80) return i;
    i += length;
  }
  return -1;
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
