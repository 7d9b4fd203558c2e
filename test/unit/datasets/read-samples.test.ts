import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, describe, expect, test } from 'vitest';
import { exportSamples } from '../../../datasets/writers.js';
import { readSamples, type SampleReadItem } from '../../../datasets/read-samples.js';
import { sampleId, type Sample } from '../../../core/schemas/sample.js';

const DATA = fileURLToPath(new URL('../../../data/bfcl/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'looptool-samples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function collect(items: AsyncIterable<SampleReadItem>): Promise<SampleReadItem[]> {
  const out: SampleReadItem[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const samples = (items: SampleReadItem[]): Sample[] =>
  items.flatMap((item) => (item.kind === 'sample' ? [item.sample] : []));

describe('readSamples', () => {
  test('reads BFCL questions and answers in lockstep into acceptable-value samples', async () => {
    const items = await collect(
      readSamples({
        file: `${DATA}BFCL_v4_parallel.json`,
        answersFile: `${DATA}possible_answer/BFCL_v4_parallel.json`,
        format: 'bfcl',
      }),
    );
    expect(items).toHaveLength(200);
    expect(items.every((item) => item.kind === 'sample' && item.sample.target.kind === 'acceptable')).toBe(true);
    expect(items[199]).toMatchObject({ kind: 'sample', line: 200 });
  });

  test('reads BFCL irrelevance questions without answers into text targets', async () => {
    const items = await collect(readSamples({ file: `${DATA}BFCL_v4_irrelevance.json`, format: 'bfcl' }));
    expect(samples(items).every((sample) => sample.target.kind === 'text')).toBe(true);
    expect(items).toHaveLength(240);
  });

  test('locates every rejected record and keeps going', async () => {
    const file = join(dir, 'chat.jsonl');
    writeFileSync(
      file,
      [
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{\\"a\\": 1.5}"}}]}], "tools": [{"name": "f", "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}]}',
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null, "tool_calls": [{"function": {"name": "f", "arguments": "{bad"}}]}]}',
        'not json',
        '{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "Hello!"}]}',
      ].join('\n'),
    );
    const items = await collect(readSamples({ file, format: 'openai' }));
    expect(
      items.map((item) =>
        item.kind === 'sample' ? `sample@${item.line}` : `${item.rejection.line}:${item.rejection.field}`,
      ),
    ).toEqual(['sample@1', '2:messages[1].tool_calls[0].function.arguments', '3:', 'sample@4']);
  });
});

describe('exportSamples', () => {
  test('streams samples to OpenAI JSONL and back without changing a single sample id', async () => {
    const source = samples(
      await collect(readSamples({ file: `${DATA}BFCL_v4_irrelevance.json`, format: 'bfcl' })),
    ).slice(0, 20);
    const file = join(dir, 'out.openai.jsonl');
    const { written, rejected } = await exportSamples({ samples: source, format: 'openai-jsonl', file });
    expect({ written, rejected }).toEqual({ written: 20, rejected: [] });
    const back = samples(await collect(readSamples({ file, format: 'openai' })));
    // A text target with no reference text is written as an empty assistant turn and read back as "no text".
    expect(back.map(sampleId)).toEqual(source.map(sampleId));
  });

  test('reports samples a format cannot express and writes the rest (verl parquet)', async () => {
    const bfcl = samples(
      await collect(
        readSamples({
          file: `${DATA}BFCL_v4_simple_python.json`,
          answersFile: `${DATA}possible_answer/BFCL_v4_simple_python.json`,
          format: 'bfcl',
        }),
      ),
    ).slice(0, 2);
    const plain: Sample = {
      tools: [],
      messages: [{ role: 'user', content: 'hi' }],
      target: { kind: 'text', text: 'Hello!' },
    };
    const file = join(dir, 'train.parquet');
    const result = await exportSamples({ samples: [...bfcl, plain], format: 'verl-parquet', file, dataSource: 'demo' });
    expect(result).toEqual({
      written: 1,
      rejected: [
        { index: 0, field: 'target', reason: 'an acceptable-values target has no single label text' },
        { index: 1, field: 'target', reason: 'an acceptable-values target has no single label text' },
      ],
    });
    const bytes = readFileSync(file);
    const rows = await parquetReadObjects({
      file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    });
    expect(rows).toMatchObject([
      {
        data_source: 'demo',
        reward_model: { style: 'rule', ground_truth: 'Hello!' },
        // No system text and no tools: the policy's chat has no system message.
        prompt: [{ role: 'user', content: 'hi' }],
        extra_info: { index: 2n, tools: '[]' },
      },
    ]);
  });
});
