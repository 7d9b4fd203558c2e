import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, test } from 'vitest';
import { writeJsonLines, writeVerlParquet } from '../../../datasets/writers.js';
import { readRecords, type ReadItem } from '../../../datasets/read-records.js';
import type { VerlRow } from '../../../core/formats/verl.js';
import { JsonFloat } from '../../../core/json.js';

const dir = mkdtempSync(join(tmpdir(), 'looptool-io-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(file: string, maxLineChars?: number): Promise<ReadItem[]> {
  const items: ReadItem[] = [];
  for await (const item of readRecords(file, maxLineChars === undefined ? {} : { maxLineChars })) items.push(item);
  return items;
}

describe('readRecords', () => {
  test('streams records with their line numbers, skips blank lines, handles CRLF and a BOM, keeps floats', async () => {
    const file = join(dir, 'ok.jsonl');
    writeFileSync(file, '\uFEFF{"a": 1.0}\r\n\n  \n[1, 2]\n"last line without newline"');
    const items = await collect(file);
    expect(items).toEqual([
      { kind: 'record', file, line: 1, value: { a: new JsonFloat(1) } },
      { kind: 'record', file, line: 4, value: [1, 2] },
      { kind: 'record', file, line: 5, value: 'last line without newline' },
    ]);
  });

  test('reports a bad line with file, line and column, and keeps reading', async () => {
    const file = join(dir, 'bad.jsonl');
    writeFileSync(file, '{"a": 1}\n{"a": }\n{"b": 2}\n');
    const items = await collect(file);
    expect(items[1]).toEqual({
      kind: 'rejection',
      rejection: { file, line: 2, field: '', reason: 'invalid JSON: unexpected character "}" (column 7)' },
    });
    expect(items[2]).toMatchObject({ kind: 'record', line: 3 });
  });

  test('rejects an over-long line without holding it, then goes on', async () => {
    const file = join(dir, 'long.jsonl');
    writeFileSync(file, `"${'x'.repeat(200_000)}"\n{"ok": true}\n`);
    const items = await collect(file, 1000);
    expect(items).toEqual([
      { kind: 'rejection', rejection: { file, line: 1, field: '', reason: 'line is longer than 1000 characters' } },
      { kind: 'record', file, line: 2, value: { ok: true } },
    ]);
  });

  test('throws when the file cannot be opened', async () => {
    await expect(collect(join(dir, 'missing.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('writers', () => {
  test('writeJsonLines keeps floats as floats', async () => {
    const file = join(dir, 'out.jsonl');
    expect(await writeJsonLines(file, [{ a: new JsonFloat(1) }, [2]])).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe('{"a":1.0}\n[2]\n');
  });

  test('writeVerlParquet writes rows verl can read back: prompt as a list of any length, reward_model and extra_info as structs', async () => {
    const file = join(dir, 'train.parquet');
    // Prompts of one, two and four messages: the policy's chat has as many turns as the sample's history.
    const prompts: VerlRow['prompt'][] = [
      [{ role: 'user', content: 'user 0' }],
      [
        { role: 'system', content: 'system 1' },
        { role: 'user', content: 'user 1' },
      ],
      [
        { role: 'system', content: 'system 2' },
        { role: 'user', content: 'user 2' },
        { role: 'assistant', content: '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>' },
        { role: 'user', content: '<tool_response>\n{"ok": true}\n</tool_response>' },
      ],
    ];
    const rows: VerlRow[] = prompts.map((prompt, index) => ({
      data_source: 'looptool',
      prompt,
      ability: 'tool_call',
      reward_model: {
        style: 'rule',
        ground_truth: `<tool_call>\n{"name": "f", "arguments": {"i": ${index}}}\n</tool_call>`,
      },
      extra_info: { index, sample_id: `id${index}`, tools: `[{"name":"f${index}"}]` },
    }));
    expect(await writeVerlParquet(file, rows, { rowGroupSize: 2 })).toBe(3);
    const bytes = readFileSync(file);
    const read = await parquetReadObjects({
      file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    });
    expect(read).toEqual(
      rows.map((row) => ({ ...row, extra_info: { ...row.extra_info, index: BigInt(row.extra_info.index) } })),
    );
  });
});
