import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { firstInvalidUtf8, type ReadItem, readRecords } from '../../../datasets/read-records.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'looptool-read-records-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const FIXTURE = fileURLToPath(new URL('../../fixtures/bad/invalid-utf8.jsonl', import.meta.url));

async function readAll(file: string, maxLineChars?: number): Promise<ReadItem[]> {
  const items: ReadItem[] = [];
  for await (const item of readRecords(file, maxLineChars === undefined ? {} : { maxLineChars })) items.push(item);
  return items;
}

const reasons = (items: ReadItem[]) =>
  items.flatMap((item) => (item.kind === 'rejection' ? [[item.rejection.line, item.rejection.reason] as const] : []));

/** The offset of the first bad byte a reason names, in the line and in the file. */
function offsets(reason: string): { inLine: number; inFile: number } {
  const match = /^invalid UTF-8 at byte (\d+) of the line \(file byte (\d+)\)$/.exec(reason);
  expect(match, reason).not.toBeNull();
  return { inLine: Number(match![1]), inFile: Number(match![2]) };
}

describe('readRecords and bytes that are not UTF-8', () => {
  test('the fixture: each bad line is rejected at the offset of its bad byte, the good lines keep their text', async () => {
    const bytes = readFileSync(FIXTURE);
    const items = await readAll(FIXTURE);
    const rejected = reasons(items);
    expect(rejected.map(([line]) => line)).toEqual([2, 4, 5, 6]);
    // Where each line starts in the file, to check that both offsets point at the same byte.
    const lineStarts = [0];
    for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0x0a) lineStarts.push(i + 1);
    const expectedBad = { 2: [0xff], 4: [0xe2, 0x82], 5: [0xc0, 0xaf], 6: [0xed, 0xa0] } as Record<number, number[]>;
    for (const [line, reason] of rejected) {
      const { inLine, inFile } = offsets(reason);
      expect(inFile - lineStarts[line - 1]!, `line ${line}`).toBe(inLine);
      expect([...bytes.subarray(inFile, inFile + expectedBad[line]!.length)], `line ${line}`).toEqual(
        expectedBad[line],
      );
    }
    const records = items.flatMap((item) => (item.kind === 'record' ? [item] : []));
    expect(records.map((r) => r.line)).toEqual([1, 3, 7]);
    // The valid line with accents and a symbol comes back exactly; nothing anywhere became U+FFFD.
    expect(JSON.stringify(records[1]!.value)).toContain('Météo à Genève ? ☀');
    expect(JSON.stringify(records.map((r) => r.value))).not.toContain('\uFFFD');
  });

  test('a bad byte far into a large file, and characters split across read chunks, are located exactly', async () => {
    // 64 KiB reads: lines of 3-byte characters cross chunk boundaries at every possible split point.
    const good = (n: number) => Buffer.from(`${JSON.stringify({ n, text: '€'.repeat(1000 + (n % 7)) })}\n`);
    const parts: Buffer[] = [];
    for (let n = 0; n < 300; n++) parts.push(good(n));
    const bad = Buffer.from(`{"n": "bad", "text": "ok ok ok XY"}\n`);
    const badAt = bad.indexOf('XY');
    bad[badAt] = 0xf8; // never valid in UTF-8
    const before = Buffer.concat(parts);
    const file = path.join(dir, 'large.jsonl');
    writeFileSync(file, Buffer.concat([before, bad, good(300)]));

    const items = await readAll(file);
    expect(items.filter((i) => i.kind === 'record')).toHaveLength(301);
    const [[line, reason]] = reasons(items) as [[number, string]];
    expect(line).toBe(301);
    expect(offsets(reason)).toEqual({ inLine: badAt, inFile: before.length + badAt });
    for (const item of items) if (item.kind === 'record') expect(JSON.stringify(item.value)).not.toContain('\uFFFD');
  });

  test('a bad byte in a line longer than one read chunk is located too', async () => {
    const long = Buffer.from(`{"text": "${'a'.repeat(200_000)}Z"}\n`);
    const at = long.indexOf('Z');
    long[at] = 0x80; // a continuation byte with no lead byte
    const file = path.join(dir, 'long.jsonl');
    const first = Buffer.from('{"first": true}\n');
    writeFileSync(file, Buffer.concat([first, long, Buffer.from('{"last": true}')]));
    const items = await readAll(file);
    expect(reasons(items).map(([line, reason]) => [line, offsets(reason)])).toEqual([
      [2, { inLine: at, inFile: first.length + at }],
    ]);
    expect(items.filter((i) => i.kind === 'record').map((i) => (i.kind === 'record' ? i.line : 0))).toEqual([1, 3]);
  });

  test('the line limit counts characters, not bytes: multi-byte text under the limit is read, longer text is not', async () => {
    const file = path.join(dir, 'limits.jsonl');
    const euros = JSON.stringify({ text: '€'.repeat(90) }); // 100 characters, 280 bytes
    const ascii = JSON.stringify({ text: 'x'.repeat(200) }); // 212 characters
    writeFileSync(file, `${euros}\n${ascii}\n`);
    const items = await readAll(file, 150);
    expect(items[0]).toMatchObject({ kind: 'record', line: 1 });
    expect(reasons(items)).toEqual([[2, 'line is longer than 150 characters']]);
  });

  test('firstInvalidUtf8 follows Unicode table 3-7: overlong forms, surrogates, values past U+10FFFF, truncation', () => {
    expect(firstInvalidUtf8(Buffer.from('plain ascii, é, €, 𝄞'))).toBe(-1);
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xc0, 0xaf]))).toBe(1); // overlong '/'
    expect(firstInvalidUtf8(Buffer.from([0xe0, 0x80, 0xaf]))).toBe(0); // overlong 3-byte
    expect(firstInvalidUtf8(Buffer.from([0x61, 0x62, 0xed, 0xa0, 0x80]))).toBe(2); // surrogate U+D800
    expect(firstInvalidUtf8(Buffer.from([0xf4, 0x90, 0x80, 0x80]))).toBe(0); // U+110000
    expect(firstInvalidUtf8(Buffer.from([0x61, 0xe2, 0x82]))).toBe(1); // truncated at the end
    expect(firstInvalidUtf8(Buffer.from([0xe2, 0x82, 0x61]))).toBe(0); // truncated before a letter
  });
});
