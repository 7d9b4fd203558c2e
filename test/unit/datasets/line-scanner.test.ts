import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { LocatedRejection } from '../../../core/formats/rejection.js';
import { scanLines, type ScanLinesOptions } from '../../../datasets/line-scanner.js';

const dir = mkdtempSync(join(tmpdir(), 'looptool-scan-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(content: Buffer | string): string {
  const path = join(dir, `f${n++}.jsonl`);
  writeFileSync(path, content);
  return path;
}

function scan(
  path: string,
  options: ScanLinesOptions = {},
): { lines: [number, string][]; rejections: LocatedRejection[] } {
  const lines: [number, string][] = [];
  const rejections: LocatedRejection[] = [];
  scanLines(
    path,
    (line) => lines.push([line.line, line.bytes.toString('utf8', line.start, line.end)]),
    (rejection) => rejections.push(rejection),
    options,
  );
  return { lines, rejections };
}

describe('scanLines', () => {
  test('drops the BOM, \\r and blank lines, numbers lines as an editor does, reads a last line without a newline', () => {
    const path = file('\uFEFF{"a": 1}\r\n\n   \t\r\n{"b": "é"}\r\n  {"c": 3}\n{"d": 4}');
    const { lines, rejections } = scan(path);
    expect(rejections).toEqual([]);
    expect(lines).toEqual([
      [1, '{"a": 1}'],
      [4, '{"b": "é"}'],
      [5, '  {"c": 3}'],
      [6, '{"d": 4}'],
    ]);
  });

  test('gives the same lines whatever the chunk size, growing the buffer for lines longer than a chunk', () => {
    const content = Array.from({ length: 50 }, (_, i) => JSON.stringify({ id: `q${i}`, text: 'x'.repeat(i * 7) }));
    const path = file(`${content.join('\n')}\n`);
    const whole = scan(path);
    expect(whole.lines.map(([, text]) => text)).toEqual(content);
    for (const chunkBytes of [1, 5, 64, 300])
      expect(scan(path, { chunkBytes }).lines, `chunk ${chunkBytes}`).toEqual(whole.lines);
  });

  test('a line that is not UTF-8 is rejected with its offsets, and the lines around it are read', () => {
    const bad = Buffer.concat([
      Buffer.from('{"a": "ok"}\n{"b": "'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}\n{"c": 1}\n'),
    ]);
    for (const chunkBytes of [4, 1 << 20]) {
      const { lines, rejections } = scan(file(bad), { chunkBytes });
      expect(lines.map(([line]) => line)).toEqual([1, 3]);
      expect(rejections).toHaveLength(1);
      expect(rejections[0]).toMatchObject({ line: 2, field: '' });
      expect(rejections[0]?.reason).toBe('invalid UTF-8 at byte 7 of the line (file byte 19)');
    }
  });

  test('a line longer than the limit is rejected without being held, and reading goes on after it', () => {
    const path = file(`{"a": 1}\n${'{"long": "' + 'y'.repeat(500) + '"}'}\n{"b": 2}\n`);
    const { lines, rejections } = scan(path, { maxLineBytes: 100, chunkBytes: 16 });
    expect(lines).toEqual([
      [1, '{"a": 1}'],
      [3, '{"b": 2}'],
    ]);
    expect(rejections).toEqual([{ file: path, line: 2, field: '', reason: 'line is longer than 100 bytes' }]);
  });

  test('parts of a file read as ranges give the whole file, each line once, with its own number', () => {
    const content = Array.from({ length: 40 }, (_, i) => (i % 7 === 3 ? '' : JSON.stringify({ id: i })));
    const text = `${content.join('\n')}\n`;
    const path = file(text);
    const whole = scan(path);
    // Cut after the newline ending line 13 and line 27 (counted from 1).
    const cuts = [0];
    let at = -1;
    for (let line = 1; line <= 27; line++) {
      at = text.indexOf('\n', at + 1);
      if (line === 13 || line === 27) cuts.push(at + 1);
    }
    const ranges = [
      { start: cuts[0] as number, end: cuts[1] as number, firstLine: 1 },
      { start: cuts[1] as number, end: cuts[2] as number, firstLine: 14 },
      { start: cuts[2] as number, end: text.length, firstLine: 28 },
    ];
    const parts: [number, string][] = [];
    for (const range of ranges) parts.push(...scan(path, { range, chunkBytes: 32 }).lines);
    expect(parts).toEqual(whole.lines);
  });
});
