import { isUtf8 } from 'node:buffer';
import { closeSync, openSync, readSync } from 'node:fs';
import type { LocatedRejection } from '../core/formats/rejection.js';
import { firstInvalidUtf8 } from './read-records.js';

/**
 * One line of a file as bytes: `bytes[start, end)`, without its newline, a trailing `\r` or (on line 1) a BOM. The
 * buffer is the scanner's own and is reused: copy what must outlive the callback.
 */
export interface LineBytes {
  bytes: Buffer;
  start: number;
  end: number;
  /** 1-based, counting blank lines too, as editors do. */
  line: number;
}

export interface ScanLinesOptions {
  /** Lines longer than this many bytes are rejected without being held whole. Defaults to 64 MiB. */
  maxLineBytes?: number;
  /** Bytes read per call (the buffer grows only for a longer line). Defaults to 1 MiB. */
  chunkBytes?: number;
  /**
   * A part of the file, `[start, end)` in bytes, for readers that split a file between threads: `start` must be 0 or
   * just after a newline, and `firstLine` the number of the line that starts there (count the newlines before it).
   */
  range?: { start: number; end: number; firstLine: number };
}

const DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024;
const DEFAULT_CHUNK_BYTES = 1 << 20;
const NEWLINE = 0x0a;

/** True when `bytes[start, end)` holds only JSON whitespace. */
function blank(bytes: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  }
  return true;
}

/**
 * Reads a line-oriented file (JSONL) as bytes, synchronously, for readers that want to look at a line before decoding it (the
 * scorer skips lines whose content it has already read). Memory stays at one chunk plus the longest line, whatever
 * the file's size. Every non-blank line goes to `onLine`; a line that is not UTF-8 (offset of its first bad byte in the
 * line and in the file) or is longer than the limit goes to `onRejection`, located, and the scan goes on.
 *
 * A region of whole lines is checked as UTF-8 in one native call (a newline byte never occurs inside a multi-byte
 * sequence, so the region is valid exactly when each of its lines is); only a region with a bad byte is gone through
 * line by line. `readRecords` is the record-at-a-time reader for everything else.
 */
export function scanLines(
  file: string,
  onLine: (line: LineBytes) => void,
  onRejection: (rejection: LocatedRejection) => void,
  options: ScanLinesOptions = {},
): void {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  // Reads are synchronous: a chunk from the page cache takes a fraction of a millisecond, while a read through the
  // thread pool costs a thread hand-off per chunk, which on a busy machine is most of the time the scan takes.
  const fd = openSync(file, 'r');
  try {
    let buffer = Buffer.allocUnsafe(Math.min(options.chunkBytes ?? DEFAULT_CHUNK_BYTES, maxLineBytes + 1));
    /** Bytes of `buffer` holding data not yet split into lines. */
    let filled = 0;
    const range = options.range ?? { start: 0, end: Infinity, firstLine: 1 };
    /** File offset of `buffer[0]`, and of the next byte to read. */
    let bufferOffset = range.start;
    let position = range.start;
    let lineNumber = range.firstLine - 1;
    /** Set while skipping the rest of a line already known to be too long. */
    let skippingOverlong = false;
    const view: LineBytes = { bytes: buffer, start: 0, end: 0, line: 0 };

    const emit = (start: number, end: number, checked: boolean): void => {
      lineNumber++;
      if (!checked && !isUtf8(buffer.subarray(start, end))) {
        const at = firstInvalidUtf8(buffer.subarray(start, end));
        onRejection({
          file,
          line: lineNumber,
          field: '',
          reason: `invalid UTF-8 at byte ${at} of the line (file byte ${bufferOffset + start + at})`,
        });
        return;
      }
      if (lineNumber === 1 && buffer[start] === 0xef && buffer[start + 1] === 0xbb && buffer[start + 2] === 0xbf)
        start += 3;
      if (end > start && buffer[end - 1] === 0x0d) end--;
      if (start === end || ((buffer[start] === 0x20 || buffer[start] === 0x09) && blank(buffer, start, end))) return;
      view.bytes = buffer;
      view.start = start;
      view.end = end;
      view.line = lineNumber;
      onLine(view);
    };

    for (;;) {
      const wanted = Math.min(buffer.length - filled, range.end - position);
      const bytesRead = wanted > 0 ? readSync(fd, buffer, filled, wanted, position) : 0;
      position += bytesRead;
      const end = filled + bytesRead;
      const atEof = bytesRead === 0;
      let start = 0;
      if (skippingOverlong) {
        const newline = buffer.subarray(0, end).indexOf(NEWLINE);
        if (newline < 0 && !atEof) {
          bufferOffset += end;
          filled = 0;
          continue;
        }
        skippingOverlong = false;
        start = newline < 0 ? end : newline + 1;
      }
      const last = buffer.subarray(0, end).lastIndexOf(NEWLINE);
      if (last >= start) {
        const wholeLines = isUtf8(buffer.subarray(start, last));
        const scan = buffer.subarray(0, last + 1);
        while (start <= last) {
          const newline = scan.indexOf(NEWLINE, start);
          emit(start, newline, wholeLines);
          start = newline + 1;
        }
      }
      if (atEof) {
        if (start < end) emit(start, end, false);
        return;
      }
      // The unfinished line moves to the front; a buffer it fills grows, up to the limit.
      const rest = end - start;
      if (rest > maxLineBytes) {
        lineNumber++;
        onRejection({ file, line: lineNumber, field: '', reason: `line is longer than ${maxLineBytes} bytes` });
        skippingOverlong = true;
        bufferOffset += end;
        filled = 0;
        continue;
      }
      buffer.copy(buffer, 0, start, end);
      bufferOffset += start;
      filled = rest;
      if (filled === buffer.length) {
        const grown = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxLineBytes + 1));
        buffer.copy(grown, 0, 0, filled);
        buffer = grown;
      }
    }
  } finally {
    closeSync(fd);
  }
}
