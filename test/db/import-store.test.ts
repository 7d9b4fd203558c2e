import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openAiChatToSamples } from '../../core/formats/index.js';
import { parseJson } from '../../core/json.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { insertSamples } from '../../db/queries/samples.js';
import {
  addMembers,
  createVersion,
  freezeVersion,
  inheritMembers,
  removeMembers,
  streamSamplesInContentOrder,
} from '../../db/queries/versions.js';
import { encodeSample } from '../../db/sample-codec.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { storedSample } from '../helpers/samples.js';

/** An OpenAI chat record with one tool call; `n` decides its content. */
function record(n: number): string {
  return JSON.stringify({
    tools: [{ type: 'function', function: { name: `tool_${n % 3}`, parameters: { type: 'object', properties: {} } } }],
    messages: [
      { role: 'user', content: `request ${n}` },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: `c${n}`, type: 'function', function: { name: `tool_${n % 3}`, arguments: '{}' } }],
      },
    ],
  });
}

/** What the import must have stored for a line: the sample core and the codec make of it. */
const storedOf = (line: string) => {
  const parsed = parseJson(line);
  if (!parsed.ok) throw new Error('test input');
  const converted = openAiChatToSamples(parsed.value);
  if (!converted.ok) throw new Error('test input');
  return encodeSample(converted.value[0]!);
};

describe('import and versions on a real PostgreSQL', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'looptool-import-store-'));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const count = async (table: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;

  test('repeated samples and bad lines are counted exactly, across pages, and stored with their first line', async () => {
    const lines = [
      record(1), // 1
      record(2), // 2
      '{"messages": [', // 3: not JSON
      record(1), // 4: repeats line 1 (another page)
      '{"tools": []}', // 5: no messages
      record(3), // 6
      '{"messages": [{"role": "narrator", "content": "x"}, {"role": "assistant", "content": "y"}]}', // 7: unknown role
      record(2), // 8: repeats line 2
      record(4), // 9
      record(4), // 10: repeats line 9 (the same page)
    ];
    const file = path.join(dir, 'mixed.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const staged = await stageFile({
      pool: db.pool,
      file,
      format: 'openai',
      purpose: 'import',
      target: 'mixed',
      batchSize: 2,
    });
    expect(staged).toMatchObject({ lines: 10, staged: 4, duplicates: 3, rejected: 3, newToStore: 4 });
    expect(staged.rejections.map((r) => r.line)).toEqual([3, 5, 7]);

    const expected = new Map([1, 2, 6, 9].map((line) => [storedOf(lines[line - 1]!).id, line]));
    const members = await db.pool.query<{ sample_id: string; line: number }>(
      'SELECT sample_id, line FROM staging_members WHERE batch_id = $1 ORDER BY line',
      [staged.batchId],
    );
    expect(new Map(members.rows.map((r) => [r.sample_id, r.line]))).toEqual(expected);
    const origins = await db.pool.query<{ sample_id: string; kind: string; detail: unknown }>(
      'SELECT sample_id, kind, detail FROM all_sample_origins WHERE sample_id = ANY($1::text[]) ORDER BY sample_id',
      [[...expected.keys()]],
    );
    expect(origins.rows).toHaveLength(4);
    for (const origin of origins.rows)
      expect(origin).toEqual({
        sample_id: origin.sample_id,
        kind: 'seed_import',
        detail: { batch: staged.batchId, file: 'mixed.jsonl', line: expected.get(origin.sample_id) },
      });
    const rejections = await db.pool.query<{ line: number; field: string | null; reason: string }>(
      'SELECT line, field, reason FROM staging_rejections WHERE batch_id = $1 ORDER BY line',
      [staged.batchId],
    );
    expect(rejections.rows).toEqual(
      staged.rejections.map((r) => ({ line: r.line, field: r.field || null, reason: r.reason })),
    );
    expect(rejections.rows[1]!.field).toBe('messages');

    // Content byte for byte as the codec wrote it, tool lists stored once.
    const stored = await db.pool.query<{ id: string; messages: string; target: string; tools: string }>(
      `SELECT s.id, s.messages::text AS messages, s.target::text AS target, t.tools::text AS tools
       FROM samples s JOIN toolsets t ON t.id = s.toolset_id WHERE s.id = ANY($1::text[])`,
      [[...expected.keys()]],
    );
    for (const row of stored.rows) {
      const want = storedOf(lines[expected.get(row.id)! - 1]!);
      expect(row).toEqual({ id: want.id, messages: want.messagesJson, target: want.targetJson, tools: want.toolsJson });
    }

    const made = await versionFromImport(db.pool, { dataset: 'mixed', batchId: staged.batchId });
    expect(made.added).toBe(4);
    expect(made.version).toMatchObject({ memberCount: 4, countsByRole: { seed: 4 } });

    // The same file again: nothing new is stored, and no version is made.
    const tables = ['samples', 'toolsets', 'sample_origins', 'dataset_versions', 'dataset_members'];
    const before = await Promise.all(tables.map(count));
    const again = await stageFile({ pool: db.pool, file, format: 'openai', purpose: 'import', target: 'mixed' });
    expect(again).toMatchObject({ staged: 4, duplicates: 3, rejected: 3, newToStore: 0 });
    expect(await versionFromImport(db.pool, { dataset: 'mixed', batchId: again.batchId })).toEqual({ added: 0 });
    expect(await Promise.all(tables.map(count))).toEqual(before);
  });

  test('a child version holds its parent minus the removed plus the added, with their roles', async () => {
    const samples = Array.from({ length: 120 }, (_, i) => storedSample(70_000 + i));
    await insertSamples(db.pool, samples);
    const parent = await createVersion(db.pool, { dataset: 'derive', idempotencyKey: 'derive:1' });
    await addMembers(
      db.pool,
      parent.id,
      samples
        .slice(0, 100)
        .map((s, i) => ({ sampleId: s.id, role: i % 10 === 0 ? ('error_seed' as const) : ('seed' as const) })),
    );
    await freezeVersion(db.pool, parent.id);

    const child = await createVersion(db.pool, { dataset: 'derive', idempotencyKey: 'derive:2', parentId: parent.id });
    expect(await inheritMembers(db.pool, { versionId: child.id, fromVersionId: parent.id })).toBe(100);
    // A retry finds the members there (the ON CONFLICT path) and adds nothing.
    expect(await inheritMembers(db.pool, { versionId: child.id, fromVersionId: parent.id })).toBe(0);
    const removed = samples.filter((_, i) => i < 100 && i % 5 === 0).map((s) => s.id);
    expect(await removeMembers(db.pool, child.id, [...removed, 'f'.repeat(64)])).toBe(20);
    expect(await removeMembers(db.pool, child.id, removed)).toBe(0);
    const added = samples.slice(100).map((s) => ({ sampleId: s.id, role: 'expanded' as const }));
    expect(await addMembers(db.pool, child.id, added)).toBe(20);
    const frozen = await freezeVersion(db.pool, child.id);
    expect(frozen).toMatchObject({ status: 'frozen', memberCount: 100, countsByRole: { seed: 80, expanded: 20 } });
    expect((await freezeVersion(db.pool, child.id)).frozenAt).toEqual(frozen.frozenAt);
    await expect(freezeVersion(db.pool, 987_654)).rejects.toThrow(/does not exist/);

    const members = await db.pool.query<{ id: string; role: string }>(
      `SELECT s.id, m.role FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $1`,
      [child.id],
    );
    const want = new Map<string, string>();
    samples.slice(0, 100).forEach((s, i) => {
      if (i % 5 !== 0) want.set(s.id, i % 10 === 0 ? 'error_seed' : 'seed');
    });
    for (const a of added) want.set(a.sampleId, a.role);
    expect(new Map(members.rows.map((r) => [r.id, r.role]))).toEqual(want);

    // An empty version freezes with zero members.
    const empty = await createVersion(db.pool, { dataset: 'derive', idempotencyKey: 'derive:3' });
    expect(await freezeVersion(db.pool, empty.id)).toMatchObject({ memberCount: 0, countsByRole: {} });

    // Whole samples stream in content order, each once, over several pages.
    const streamed: string[] = [];
    for await (const page of streamSamplesInContentOrder(db.pool, child.id, 7)) streamed.push(...page.map((s) => s.id));
    expect(streamed).toEqual([...want.keys()].sort());
  });
});
