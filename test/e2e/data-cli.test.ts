import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getStagingRejections } from '../../db/queries/staging.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { runLooptool } from '../helpers/cli.js';

const chat = (n: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    tools: [
      {
        type: 'function',
        function: {
          name: 'get_weather',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string' }, days: { type: 'integer' } },
            required: ['city'],
          },
        },
      },
    ],
    messages: [
      { role: 'user', content: `Weather in city ${n}?` },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            type: 'function',
            function: { name: 'get_weather', arguments: JSON.stringify({ city: `c${n}`, days: n }) },
          },
        ],
      },
    ],
    ...extra,
  });

describe('looptool data, as a user runs it', () => {
  let db: TestDatabase;
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    db = await createTestDatabase();
    scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-data-'));
    env = { ...process.env, DATABASE_URL: db.url };
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('a malformed file: every bad line is reported with file, line and field, every good line is imported', async () => {
    const file = path.join(scratch, 'mixed.jsonl');
    const lines = [
      chat(1),
      '{"tools": [], "messages": [', // bad JSON
      JSON.stringify({ tools: [] }), // missing messages
      chat(2).replace('"type":"object"', '"type":"objekt"'), // invalid tool schema
      JSON.stringify({ tools: 'get_weather', messages: [] }), // wrong type
      `{"pad": "${'x'.repeat(10 * 1024 * 1024)}"}`, // a 10 MB line
      chat(3),
      chat(1), // the same sample again
      '',
      chat(4),
    ];
    writeFileSync(file, lines.join('\n') + '\n');
    const result = await runLooptool(['data', 'import', file, '--format', 'openai', '--name', 'weather'], { env });
    expect(result.code).toBe(1);
    expect(result.stdout).toContain('9 records: 3 samples imported, 1 duplicates, 5 rejected (3 new to the store)');
    expect(result.stdout).toMatch(/weather@1: 3 samples/);
    const reported = result.stderr.trim().split('\n');
    expect(reported).toHaveLength(5);
    expect(reported[0]).toMatch(new RegExp(`^${file}:2: invalid JSON`));
    expect(reported[1]).toMatch(new RegExp(`^${file}:3: messages: `));
    expect(reported[2]).toMatch(new RegExp(`^${file}:4: tools\\[0\\]`));
    expect(reported[3]).toMatch(new RegExp(`^${file}:5: tools: `));
    expect(reported[4]).toMatch(new RegExp(`^${file}:6: line is longer than \\d+ characters`));

    const { rows } = await db.pool.query(`SELECT id FROM staging_batches WHERE source = $1`, [file]);
    expect((await getStagingRejections(db.pool, rows[0].id)).map((r) => r.line)).toEqual([2, 3, 4, 5, 6]);
  });

  test('importing the same file again changes nothing; a new file makes the next version', async () => {
    const file = path.join(scratch, 'weather-more.jsonl');
    writeFileSync(file, [chat(10), chat(11)].join('\n'));
    expect(
      (await runLooptool(['data', 'import', file, '--format', 'openai', '--name', 'weather'], { env })).stdout,
    ).toMatch(/weather@2: 5 samples \(2 new/);
    const again = await runLooptool(['data', 'import', file, '--format', 'openai', '--name', 'weather'], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/weather: unchanged/);

    const versions = JSON.parse(
      (await runLooptool(['data', 'versions', '--dataset', 'weather', '--json'], { env })).stdout,
    );
    expect(versions.map((v: { ref: string; memberCount: number }) => [v.ref, v.memberCount])).toEqual([
      ['weather@1', 3],
      ['weather@2', 5],
    ]);
    const diff = JSON.parse((await runLooptool(['data', 'diff', 'weather@1', 'weather@2', '--json'], { env })).stdout);
    expect(diff).toMatchObject({ added: 2, removed: 0, unchanged: 3, addedByOrigin: { seed_import: 2 } });
  });

  test('BFCL questions with possible answers import, and exports round-trip through OpenAI JSONL and verl parquet', async () => {
    const dataDir = path.resolve('data/bfcl');
    const imported = await runLooptool(
      [
        'data',
        'import',
        path.join(dataDir, 'BFCL_v4_parallel.json'),
        '--format',
        'bfcl',
        '--answers',
        path.join(dataDir, 'possible_answer', 'BFCL_v4_parallel.json'),
        '--name',
        'bfcl-parallel',
      ],
      { env },
    );
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/bfcl-parallel@1: 200 samples/);

    const out = path.join(scratch, 'weather.jsonl');
    const exported = await runLooptool(['data', 'export', 'weather@2', '--format', 'openai-jsonl', '--out', out], {
      env,
    });
    expect(exported.stdout).toContain('weather@2: 5 samples written');
    const reimported = await runLooptool(['data', 'import', out, '--format', 'openai', '--name', 'weather-copy'], {
      env,
    });
    expect(reimported.stdout).toMatch(/5 samples imported, 0 duplicates, 0 rejected \(0 new to the store\)/);

    const parquet = path.join(scratch, 'weather.parquet');
    await runLooptool(['data', 'export', 'weather@2', '--format', 'verl-parquet', '--out', parquet], { env });
    const buffer = readFileSync(parquet);
    const rows = await parquetReadObjects({
      file: buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength),
    });
    expect(rows).toHaveLength(5);
    expect(rows[0]).toMatchObject({ data_source: 'looptool', reward_model: { style: 'rule' } });
    expect(String(rows[0]!.reward_model.ground_truth)).toMatch(/^<tool_call>\n\{"name": "get_weather"/);
  });

  test('show and lineage describe a version and a sample', async () => {
    const show = await runLooptool(['data', 'show', 'weather@2', '--samples', '1'], { env });
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(/seed\s+seed_import\s+5/);
    const [sampleId] = show.stdout.match(/^[0-9a-f]{64}$/m) ?? [];
    expect(sampleId).toBeDefined();
    const lineage = await runLooptool(['data', 'lineage', sampleId!.slice(0, 10)], { env });
    expect(lineage.stdout).toContain(sampleId);
    expect(lineage.stdout).toMatch(/origin: seed_import \{.*"file":"(mixed|weather-more)\.jsonl".*\}/);
    const missing = await runLooptool(['data', 'show', 'nope@3'], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no dataset version nope@3/);
  });
});
