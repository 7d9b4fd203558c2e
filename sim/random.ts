/**
 * Deterministic randomness for the simulated model stack. Every decision the sim makes (which samples a student gets
 * right, which labels are corrupted, which verdict a judge gives) is a pure function of a seed and the content involved,
 * so two runs with the same seed see the same world.
 */

/** Where {@link hash53} writes a long text's bytes; a text of up to a third of it always fits as UTF-8. */
const scratch = Buffer.allocUnsafe(64 * 1024);

/** From this length on, writing a text to bytes first costs less than what reading bytes saves. */
const BYTES_FROM = 256;

/**
 * A fast 53-bit string hash (cyrb53). Not cryptographic: it only has to spread inputs evenly and cost little, because
 * the student hashes every request it serves.
 */
export function hash53(text: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  const length = text.length;
  // An ASCII text's UTF-8 bytes are its character codes, one each (any other character takes more bytes, so the count
  // tells), and a byte array reads about twice as fast as charCodeAt: long texts (a request's messages) go that way.
  if (length >= BYTES_FROM && 3 * length <= scratch.length && scratch.write(text, 0, 'utf8') === length) {
    for (let i = 0; i < length; i++) {
      const c = scratch[i] as number;
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
  } else {
    for (let i = 0; i < length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 2654435761);
      h2 = Math.imul(h2 ^ c, 1597334677);
    }
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507);
  h1 ^= Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** A hash as 14 hex digits, for cache keys and readable ids. */
export function hashHex(text: string, seed = 0): string {
  return hash53(text, seed).toString(16).padStart(14, '0');
}

/** A uniform number in [0, 1) determined by the parts (joined with a separator no part is expected to contain). */
export function uniform(...parts: readonly (string | number)[]): number {
  return hash53(parts.join('\u0001')) / 2 ** 53;
}

/** A seeded pseudo-random generator (sfc32) with the helpers the generators need. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: string | number) {
    const text = String(seed);
    this.a = hash53(text, 1) >>> 0;
    this.b = hash53(text, 2) >>> 0;
    this.c = hash53(text, 3) >>> 0;
    this.d = 1;
    // The first outputs of sfc32 are correlated with the seed words; burn them.
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A uniform number in [0, 1). */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)] as T;
  }

  /** An element chosen with probability proportional to its weight. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((sum, [, w]) => sum + w, 0);
    let r = this.next() * total;
    for (const [item, weight] of items) {
      r -= weight;
      if (r < 0) return item;
    }
    return (items[items.length - 1] as readonly [T, number])[0];
  }

  /** `count` distinct elements, in random order. */
  sample<T>(items: readonly T[], count: number): T[] {
    return this.shuffle([...items]).slice(0, Math.min(count, items.length));
  }

  /** Shuffles in place (Fisher–Yates) and returns the array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j] as T, items[i] as T];
    }
    return items;
  }
}

/** A map that forgets everything once it grows past `limit`: a cache whose memory stays bounded under any load. */
export class BoundedCache<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly limit: number) {}

  get(key: K): V | undefined {
    return this.map.get(key);
  }

  has(key: K): boolean {
    return this.map.has(key);
  }

  set(key: K, value: V): V {
    // Clearing wholesale is cheaper than LRU bookkeeping on the hot path, and a refill costs one recomputation each.
    if (this.map.size >= this.limit) this.map.clear();
    this.map.set(key, value);
    return value;
  }

  get size(): number {
    return this.map.size;
  }
}
