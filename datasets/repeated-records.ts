import { parseJson, type JsonValue } from '../core/json.js';
import type { Converted, Rejection } from '../core/formats/rejection.js';
import type { LineBytes } from './line-scanner.js';

/**
 * A record read from a line: its converted value, which distinct content it has (equal numbers, equal bytes) and its
 * id. Lines of equal content share one `value`, whose own `id` is the first such line's: the line's id is `id` when the
 * line was read by parsing, else the plain ASCII bytes `[idStart, idEnd)` of the line (no string is made for it).
 */
export type RecordRead<T> =
  | { ok: true; value: T; content: number; id: string; idStart: number; idEnd: number }
  | { ok: true; value: T; content: number; id: undefined; idStart: number; idEnd: number }
  | { ok: false; rejection: Rejection };

/** The id of a record read: the string, made from the line's bytes where it was read from them. */
export function recordId(read: { id: string | undefined; idStart: number; idEnd: number }, line: LineBytes): string {
  return read.id ?? line.bytes.toString('latin1', read.idStart, read.idEnd);
}

interface Known<T> {
  bytes: Buffer;
  value: T;
  content: number;
}

/**
 * Once the remembered contents hold this many bytes while fewer lines were repeats than distinct contents, the file
 * does not repeat itself enough to pay for the copies, and the reader stops remembering.
 */
const TRIAL_BYTES = 64 * 1024 * 1024;
/** Lines sharing one sampled hash that are compared byte for byte at most; more are parsed without being kept. */
const MAX_BUCKET = 8;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function isSpace(b: number | undefined): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0d;
}

/**
 * Reads JSONL records that repeat except for their `id`: BFCL's question and possible-answer files scored against many
 * predictions hold the same function docs and answers under many ids (and scoring the same questions again under new
 * ids is how a benchmark with more predictions than questions is built). A line written the usual way, `{"id":
 * "<ascii>", …}`, is split into its id and the bytes after it; bytes seen before are not parsed, validated or
 * converted again: the earlier conversion is shared, with this line's id beside it. Equality is checked byte for
 * byte (a hash of sampled bytes only finds the candidates), so the result is exactly what converting the line would
 * give. Other lines, and contents whose conversion depends on more than the leading id (a second `id` key), take the
 * ordinary path: decode, parse losslessly, convert.
 *
 * Memory: each distinct content is kept once (its bytes and value); past {@link TRIAL_BYTES} of them with fewer
 * repeats than distinct contents the reader stops remembering, so a file without repeats costs little more than
 * parsing it.
 */
export class RepeatedRecords<T extends { id: string }> {
  private readonly known = new Map<number, Known<T>[]>();
  private remembering = true;
  private hits = 0;
  private misses = 0;
  private keptBytes = 0;
  private contents = 0;

  constructor(private readonly convert: (record: JsonValue) => Converted<T>) {}

  read(line: LineBytes): RecordRead<T> {
    const { bytes, end } = line;
    const lead = this.remembering ? leadingId(bytes, line.start, end) : undefined;
    if (lead === undefined) return this.parse(bytes.toString('utf8', line.start, end));
    const { idStart, idEnd } = lead;
    const hash = sampledHash(bytes, lead.rest, end);
    const bucket = this.known.get(hash);
    const length = end - lead.rest;
    if (bucket)
      for (const known of bucket)
        if (known.bytes.length === length && bytes.compare(known.bytes, 0, length, lead.rest, end) === 0) {
          this.hits++;
          return { ok: true, id: undefined, idStart, idEnd, value: known.value, content: known.content };
        }
    const read = this.parse(bytes.toString('utf8', line.start, end));
    // A line whose content names another id (a second `id` key) keeps its parsed id and is not shared.
    const shareable = read.ok && read.value.id === bytes.toString('latin1', idStart, idEnd);
    if (shareable && (bucket?.length ?? 0) < MAX_BUCKET) {
      const known = { bytes: Buffer.from(bytes.subarray(lead.rest, end)), value: read.value, content: read.content };
      if (bucket) bucket.push(known);
      else this.known.set(hash, [known]);
    }
    this.misses++;
    this.keptBytes += length;
    if (this.keptBytes > TRIAL_BYTES && this.hits < this.misses) {
      this.remembering = false;
      this.known.clear();
    }
    return shareable ? { ...read, id: undefined, idStart, idEnd } : read;
  }

  private parse(text: string): RecordRead<T> {
    const parsed = parseJson(text);
    if (!parsed.ok)
      return {
        ok: false,
        rejection: { field: '', reason: `invalid JSON: ${parsed.error.message} (column ${parsed.error.column})` },
      };
    const converted = this.convert(parsed.value);
    return converted.ok
      ? { ok: true, id: converted.value.id, idStart: 0, idEnd: 0, value: converted.value, content: this.contents++ }
      : converted;
  }
}

/**
 * Where the id of a line that starts `{"id": "<id>",` is (whitespace allowed around the punctuation, the id printable
 * ASCII without escapes) and where the rest starts (after the comma); undefined for any other line.
 */
export function leadingId(
  bytes: Buffer,
  start: number,
  end: number,
): { idStart: number; idEnd: number; rest: number } | undefined {
  let i = start;
  if (bytes[i++] !== 0x7b) return undefined;
  while (isSpace(bytes[i])) i++;
  if (bytes[i] !== QUOTE || bytes[i + 1] !== 0x69 || bytes[i + 2] !== 0x64 || bytes[i + 3] !== QUOTE) return undefined;
  i += 4;
  while (isSpace(bytes[i])) i++;
  if (bytes[i++] !== 0x3a) return undefined;
  while (isSpace(bytes[i])) i++;
  if (bytes[i++] !== QUOTE) return undefined;
  const idStart = i;
  for (; i < end; i++) {
    const b = bytes[i] as number;
    if (b === QUOTE) break;
    if (b === BACKSLASH || b < 0x20 || b > 0x7e) return undefined;
  }
  if (i >= end || i === idStart) return undefined;
  const idEnd = i;
  i++;
  while (isSpace(bytes[i])) i++;
  if (bytes[i] !== 0x2c) return undefined;
  return { idStart, idEnd, rest: i + 1 };
}

/** FNV-1a over the length, about 64 bytes spread over `bytes[start, end)` and the last 16: cheap, for finding candidates. */
function sampledHash(bytes: Buffer, start: number, end: number): number {
  const length = end - start;
  let hash = Math.imul(0x811c9dc5 ^ length, 0x01000193);
  const step = Math.max(1, length >> 6);
  for (let i = start; i < end; i += step) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  for (let i = Math.max(start, end - 16); i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash;
}
