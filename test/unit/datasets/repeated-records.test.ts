import { describe, expect, test } from 'vitest';
import { bfclQuestionFromRecord } from '../../../core/formats/bfcl.js';
import { isJsonObject, type JsonValue } from '../../../core/json.js';
import { accept, reject } from '../../../core/formats/rejection.js';
import { RepeatedRecords, recordId, type RecordRead } from '../../../datasets/repeated-records.js';

function line(text: string) {
  const bytes = Buffer.from(`xx${text}yy`);
  return { bytes, start: 2, end: bytes.length - 2, line: 1 };
}

/** Reads a line and returns the record with its id as a string (however the reader found it). */
function readLine<T>(records: { read(l: ReturnType<typeof line>): RecordRead<T> }, text: string) {
  const at = line(text);
  const read = records.read(at);
  if (!read.ok) return read;
  return { ...read, id: recordId(read, at) };
}

/** A converter that counts its calls. */
function counting() {
  const calls: JsonValue[] = [];
  const convert = (record: JsonValue) => {
    calls.push(record);
    if (!isJsonObject(record) || typeof record.id !== 'string')
      return reject<{ id: string; x: JsonValue }>('id', 'no id');
    return accept({ id: record.id, x: record.x ?? null });
  };
  return { calls, records: new RepeatedRecords(convert) };
}

const ok = <T>(read: RecordRead<T>) => {
  if (!read.ok) throw new Error(read.rejection.reason);
  return read;
};

describe('RepeatedRecords', () => {
  test('a content seen before under another id is not converted again: same value, same content number, its own id', () => {
    const { calls, records } = counting();
    const a = ok(readLine(records, '{"id": "a", "x": [1, 2.0]}'));
    // Spacing around the id may differ: what follows the id's comma is the content.
    const b = ok(readLine(records, '{ "id" :"b" , "x": [1, 2.0]}'));
    const c = ok(readLine(records, '{"id": "c", "x": [1, 2.5]}'));
    expect(calls).toHaveLength(2);
    expect([a.id, b.id, c.id]).toEqual(['a', 'b', 'c']);
    expect(b.value).toBe(a.value);
    expect(b.content).toBe(a.content);
    expect(c.content).not.toBe(a.content);
  });

  test('contents equal but for bytes the sampled hash skips are still told apart', () => {
    const { calls, records } = counting();
    const long = (digit: string) => `{"id": "q", "x": "${'a'.repeat(500)}${digit}${'a'.repeat(500)}"}`;
    const first = ok(readLine(records, long('1')));
    const second = ok(readLine(records, long('2').replace('"q"', '"r"')));
    expect(calls).toHaveLength(2);
    expect(second.content).not.toBe(first.content);
    expect((second.value as { x: string }).x).toContain('2');
  });

  test('a second id key decides the id (the last one wins, as in JSON.parse) and such content is never shared', () => {
    const { calls, records } = counting();
    const first = ok(readLine(records, '{"id": "a", "x": 1, "id": "z"}'));
    const second = ok(readLine(records, '{"id": "b", "x": 1, "id": "z"}'));
    expect(first.id).toBe('z');
    expect(second.id).toBe('z');
    expect(calls).toHaveLength(2);
  });

  test('lines not led by their id, escaped ids and bad JSON take the ordinary path', () => {
    const { calls, records } = counting();
    expect(ok(readLine(records, '{"x": 1, "id": "late"}')).id).toBe('late');
    expect(ok(readLine(records, '{"id": "e\\u0301", "x": 1}')).id).toBe('e\u0301');
    const bad = readLine(records, '{"id": "a", "x": ');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.rejection.reason).toMatch(/^invalid JSON: .*\(column \d+\)$/);
    const rejected = readLine(records, '{"id": 5, "x": 1}');
    expect(rejected).toEqual({ ok: false, rejection: { field: 'id', reason: 'no id' } });
    expect(calls).toHaveLength(3);
  });

  test('BFCL questions read through it equal the plain conversion, line for line', () => {
    const records = new RepeatedRecords(bfclQuestionFromRecord);
    const text = (id: string) =>
      JSON.stringify({
        id,
        question: [[{ role: 'user', content: 'Area of a 10 x 5.0 triangle?' }]],
        function: [
          {
            name: 'area',
            description: 'v2.0',
            parameters: { type: 'dict', properties: { base: { type: 'integer' } }, required: ['base'] },
          },
        ],
      });
    for (const id of ['simple_python_0', 'simple_python_1', 'live_simple_2-3-4']) {
      const read = ok(readLine(records, text(id)));
      const plain = bfclQuestionFromRecord(JSON.parse(text(id)) as JsonValue);
      if (!plain.ok) throw new Error('fixture');
      expect(read.id).toBe(plain.value.id);
      expect(read.value.functions).toEqual(plain.value.functions);
      expect(read.value.messages).toEqual(plain.value.messages);
    }
  });
});
