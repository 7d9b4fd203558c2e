import { describe, expect, test } from 'vitest';
import { IdIndex } from '../../../datasets/id-index.js';

const bytesOf = (text: string) => {
  const bytes = Buffer.from(`..${text}..`, 'latin1');
  return [bytes, 2, bytes.length - 2] as const;
};

describe('IdIndex', () => {
  test('ids are numbered in the order added; a repeated id gives -1 - its index; bytes and strings meet', () => {
    const ids = new IdIndex();
    expect(ids.add(...bytesOf('simple_0'))).toBe(0);
    expect(ids.addId('simple_1')).toBe(1);
    expect(ids.add(...bytesOf('simple_1'))).toBe(-2);
    expect(ids.addId('simple_0')).toBe(-1);
    expect(ids.find(...bytesOf('simple_1'))).toBe(1);
    expect(ids.findId('simple_0')).toBe(0);
    expect(ids.find(...bytesOf('simple_2'))).toBe(-1);
    expect(ids.find(...bytesOf('simple_'))).toBe(-1);
    expect(ids.size).toBe(2);
    expect([ids.id(0), ids.id(1)]).toEqual(['simple_0', 'simple_1']);
  });

  test('ids that are not plain ASCII are kept apart, found only as strings, and written as JSON', () => {
    const ids = new IdIndex();
    expect(ids.addId('e\u0301')).toBe(0);
    expect(ids.addId('a"b')).toBe(1);
    expect(ids.addId('')).toBe(2);
    expect(ids.addId('e\u0301')).toBe(-1);
    expect(ids.findId('a"b')).toBe(1);
    expect(ids.findId('e')).toBe(-1);
    const out = Buffer.alloc(64);
    const written = ids.writeJson(1, out, 0);
    expect(out.toString('utf8', 0, written)).toBe(JSON.stringify('a"b'));
    expect(written).toBeLessThanOrEqual(ids.jsonBytes(1));
    expect(ids.id(0)).toBe('e\u0301');
  });

  test('100,000 ids: every one found at its index after the table has grown, none found twice', () => {
    const ids = new IdIndex();
    for (let i = 0; i < 100_000; i++) expect(ids.add(...bytesOf(`live_multiple_${i}-${i % 7}`))).toBe(i);
    for (let i = 0; i < 100_000; i += 997) {
      expect(ids.find(...bytesOf(`live_multiple_${i}-${i % 7}`))).toBe(i);
      expect(ids.findId(`live_multiple_${i}-${i % 7}`)).toBe(i);
      expect(ids.find(...bytesOf(`live_multiple_${i}-${(i + 1) % 7}`))).toBe(-1);
    }
    const out = Buffer.alloc(64);
    const written = ids.writeJson(12_345, out, 3);
    expect(out.toString('latin1', 3, 3 + written)).toBe('"live_multiple_12345-4"');
  });
});
