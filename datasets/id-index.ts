/**
 * Record ids numbered 0, 1, 2, … in the order they were added, found by the id's bytes where a line holds them. The
 * scorer joins 100,000s of predictions to questions and answers by id; a `Map` keyed by strings made a string per line
 * and per lookup, and inserting them was a third of reading a question file. Here an id read from a line's bytes
 * (`leadingId`'s ids: printable ASCII without quote or backslash) is hashed and compared where it lies, and its bytes
 * are copied once into one buffer; the line's number and content go in arrays beside it, by index.
 *
 * Ids read by parsing (a line not led by its id) are strings: a plain one (the same characters) takes the byte path,
 * so `{"id": "a", …}` and `{…, "id": "a"}` are one id; any other (escapes, non-ASCII) is kept in a `Map` of its own,
 * which a plain id can never equal.
 */
export class IdIndex {
  private keys = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  /** Where each id's bytes start in `keys` (and end: the next start, or `ends` for the last). */
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];
  private readonly hashes: number[] = [];
  /** Open addressing: index + 1 per slot, 0 for an empty slot. At most half full. */
  private slots = new Int32Array(1 << 12);
  /** Ids that are not plain: by string, and each index's string (undefined for plain ids). */
  private readonly others = new Map<string, number>();
  private readonly otherIds: (string | undefined)[] = [];
  private scratch = Buffer.allocUnsafe(256);

  get size(): number {
    return this.starts.length;
  }

  /** The index of the plain id at `bytes[start, end)`, or -1. */
  find(bytes: Buffer, start: number, end: number): number {
    const hash = hashBytes(bytes, start, end);
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot] as number;
      if (entry === 0) return -1;
      if (this.hashes[entry - 1] === hash && this.equals(entry - 1, bytes, start, end)) return entry - 1;
    }
  }

  /** The index of the id, or -1 (any id, as a string). */
  findId(id: string): number {
    if (!isPlain(id)) return this.others.get(id) ?? -1;
    const length = this.toScratch(id);
    return this.find(this.scratch, 0, length);
  }

  /**
   * Adds the plain id at `bytes[start, end)`: its new index, or `-1 - index` when it was there already (the caller
   * decides what a repeated id means).
   */
  add(bytes: Buffer, start: number, end: number): number {
    const hash = hashBytes(bytes, start, end);
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    for (; ; slot = (slot + 1) & mask) {
      const entry = this.slots[slot] as number;
      if (entry === 0) break;
      if (this.hashes[entry - 1] === hash && this.equals(entry - 1, bytes, start, end)) return -entry;
    }
    const length = end - start;
    if (this.used + length > this.keys.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.keys.length * 2, this.used + length));
      this.keys.copy(grown, 0, 0, this.used);
      this.keys = grown;
    }
    copyBytes(bytes, start, end, this.keys, this.used);
    const index = this.starts.length;
    this.starts.push(this.used);
    this.used += length;
    this.ends.push(this.used);
    this.hashes.push(hash);
    this.otherIds.push(undefined);
    this.slots[slot] = index + 1;
    if (this.starts.length * 2 > this.slots.length) this.grow();
    return index;
  }

  /** {@link add} for an id as a string. */
  addId(id: string): number {
    if (isPlain(id)) return this.add(this.scratch, 0, this.toScratch(id));
    const known = this.others.get(id);
    if (known !== undefined) return -1 - known;
    // An index with no bytes of its own: `find` never reaches it (no slot holds it), `id()` reads `otherIds`.
    const index = this.starts.length;
    this.starts.push(this.used);
    this.ends.push(this.used);
    this.hashes.push(0);
    this.otherIds.push(id);
    this.others.set(id, index);
    return index;
  }

  /** The id at an index, as a string. */
  id(index: number): string {
    return this.otherIds[index] ?? this.keys.toString('latin1', this.starts[index], this.ends[index]);
  }

  /** Writes the id at an index as a JSON string into `target` at `at`; the bytes written. `target` must have room. */
  writeJson(index: number, target: Buffer, at: number): number {
    const other = this.otherIds[index];
    if (other !== undefined) return target.write(JSON.stringify(other), at, 'utf8');
    const start = this.starts[index] as number;
    const end = this.ends[index] as number;
    target[at] = QUOTE;
    copyBytes(this.keys, start, end, target, at + 1);
    target[at + 1 + end - start] = QUOTE;
    return end - start + 2;
  }

  /** At most how many bytes {@link writeJson} writes for an index. */
  jsonBytes(index: number): number {
    const other = this.otherIds[index];
    return other === undefined
      ? (this.ends[index] as number) - (this.starts[index] as number) + 2
      : other.length * 6 + 2;
  }

  private equals(index: number, bytes: Buffer, start: number, end: number): boolean {
    const from = this.starts[index] as number;
    if ((this.ends[index] as number) - from !== end - start) return false;
    for (let i = 0; i < end - start; i++) if (this.keys[from + i] !== bytes[start + i]) return false;
    return true;
  }

  private grow(): void {
    // Four times larger: every id is inserted again on each growth, and doubling rehashed each of a 100,000-id file's
    // ids about twice in all (2% of reading its questions).
    const slots = new Int32Array(this.slots.length * 4);
    const mask = slots.length - 1;
    for (let index = 0; index < this.starts.length; index++) {
      if (this.otherIds[index] !== undefined) continue;
      let slot = (this.hashes[index] as number) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = index + 1;
    }
    this.slots = slots;
  }

  private toScratch(id: string): number {
    if (id.length > this.scratch.length) this.scratch = Buffer.allocUnsafe(id.length * 2);
    return this.scratch.write(id, 0, 'latin1');
  }
}

const QUOTE = 0x22;
/** Printable ASCII but `"` and `\`: the ids `leadingId` reads from bytes, whose JSON form is `"` + id + `"`. */
const PLAIN = /^[ !#-[\]-~]+$/;

function isPlain(id: string): boolean {
  return PLAIN.test(id);
}

/**
 * `source.copy(target, at, start, end)` for a few bytes: `Buffer#copy` checks its arguments in JavaScript first, which
 * for a 20-byte id cost more than the copy (a tenth of reading a question file).
 */
export function copyBytes(source: Uint8Array, start: number, end: number, target: Uint8Array, at: number): number {
  for (let i = start; i < end; i++) target[at++] = source[i] as number;
  return end - start;
}

/** FNV-1a over every byte: ids are short. */
function hashBytes(bytes: Buffer, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash >>> 0;
}
