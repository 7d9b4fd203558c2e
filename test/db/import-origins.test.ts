import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openAiChatToSamples } from '../../core/formats/index.js';
import { parseJson } from '../../core/json.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { loadMigrations, migrate, MIGRATIONS_DIR } from '../../db/migrate.js';
import { getLineage, recordOrigins } from '../../db/queries/origins.js';
import { insertSamples } from '../../db/queries/samples.js';
import { addStagingMembers, openStagingBatch } from '../../db/queries/staging.js';
import { countByRoleAndOrigin, diffVersions } from '../../db/queries/versions.js';
import { encodeSample } from '../../db/sample-codec.js';
import { withClient } from '../../db/tx.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { storedSample } from '../helpers/samples.js';

/** An OpenAI chat line with one tool call; `n` decides its content. */
function line(n: number): string {
  return JSON.stringify({
    tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: {} } } }],
    messages: [
      { role: 'user', content: `request ${n}` },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ id: `c${n}`, type: 'function', function: { name: 'lookup', arguments: '{}' } }],
      },
    ],
  });
}

const storedOf = (n: number) => {
  const parsed = parseJson(line(n));
  const converted = parsed.ok ? openAiChatToSamples(parsed.value) : undefined;
  if (!converted?.ok) throw new Error('test input');
  return encodeSample(converted.value[0]!);
};

describe('origins of imported samples (their staging members)', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(path.join(os.tmpdir(), 'looptool-import-origins-'));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Stages the lines of `ns` from a file of that name: an import into `origins`, or an injection. */
  const stage = async (name: string, ns: number[], purpose: 'import' | 'injection' = 'import') => {
    const file = path.join(dir, name);
    writeFileSync(file, `${ns.map(line).join('\n')}\n`);
    const target = purpose === 'import' ? 'origins' : 'some-loop';
    return stageFile({ pool: db.pool, file, format: 'openai', purpose, target });
  };

  test('each batch that read a sample is one of its origins, after what the loop recorded earlier', async () => {
    // Sample 5 exists before any import: an expansion of sample 1 (a loop-made origin, with a parent).
    const [one, five] = [storedOf(1), storedOf(5)];
    await insertSamples(db.pool, [one, five]);
    await recordOrigins(db.pool, [{ sampleId: five.id, kind: 'expansion', parentSampleId: one.id, detail: { k: 0 } }]);

    const a = await stage('a.jsonl', [1, 2]);
    const first = await versionFromImport(db.pool, { dataset: 'origins', batchId: a.batchId });
    const b = await stage('b.jsonl', [2, 3, 5]);
    const second = await versionFromImport(db.pool, { dataset: 'origins', batchId: b.batchId });
    const injected = await stage('inject.jsonl', [3], 'injection');

    const origins = async (n: number) => (await getLineage(db.pool, storedOf(n).id)).origins;
    const imported = (batchId: string, file: string, at: number) => ({
      kind: 'seed_import',
      loopName: null,
      iteration: null,
      detail: { batch: batchId, file, line: at },
    });
    expect(await origins(1)).toEqual([imported(a.batchId, 'a.jsonl', 1)]);
    // Imported by two batches: both, in the order the batches were opened.
    expect(await origins(2)).toEqual([imported(a.batchId, 'a.jsonl', 2), imported(b.batchId, 'b.jsonl', 1)]);
    expect(await origins(3)).toEqual([
      imported(b.batchId, 'b.jsonl', 2),
      {
        kind: 'injection',
        loopName: null,
        iteration: null,
        detail: { batch: injected.batchId, file: 'inject.jsonl', line: 1 },
      },
    ]);
    const lineage = await getLineage(db.pool, five.id);
    expect(lineage.origins.map((o) => o.kind)).toEqual(['expansion', 'seed_import']);
    expect(lineage.ancestors).toMatchObject([{ sampleId: five.id, parentSampleId: one.id, kind: 'expansion' }]);

    // Composition counts each member by its first origin: sample 5 entered as an expansion.
    expect(await countByRoleAndOrigin(db.pool, second.version!.id)).toEqual([
      { role: 'seed', origin: 'expansion', n: 1 },
      { role: 'seed', origin: 'seed_import', n: 3 },
    ]);
    expect(await diffVersions(db.pool, first.version!.id, second.version!.id)).toMatchObject({
      added: 2,
      removed: 0,
      addedByOrigin: { seed_import: 1, expansion: 1 },
    });
  });
});

describe('migration 0012: import origins move to staging members', () => {
  let db: TestDatabase;
  let scratch: string;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-migration-0012-'));
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('origins an import wrote are read from its members once; every other origin stays', async () => {
    // The schema before 0012, written to as imports wrote to it then: an origin row next to each member.
    const before = path.join(scratch, 'migrations');
    cpSync(MIGRATIONS_DIR, before, { recursive: true });
    const fromThisOn = loadMigrations().filter((m) => m.id >= 12);
    for (const later of fromThisOn) rmSync(path.join(before, path.basename(later.file)));
    await withClient(db.pool, (client) => migrate(client, { dir: before }));

    const samples = [1, 2, 3].map((n) => storedSample(90_000 + n));
    const [s1, s2, s3] = samples as [(typeof samples)[0], (typeof samples)[0], (typeof samples)[0]];
    await insertSamples(db.pool, samples);
    const batch = 'import-00000000-0000-4000-8000-000000000012';
    await openStagingBatch(db.pool, {
      id: batch,
      purpose: 'import',
      target: 'old',
      source: '/data/old.jsonl',
      format: 'openai',
    });
    await addStagingMembers(db.pool, batch, [
      { sampleId: s1.id, line: 1 },
      { sampleId: s2.id, line: 2 },
    ]);
    await recordOrigins(db.pool, [
      { sampleId: s1.id, kind: 'seed_import', detail: { batch, file: 'old.jsonl', line: 1 } },
      { sampleId: s2.id, kind: 'seed_import', detail: { batch, file: 'old.jsonl', line: 2 } },
      // Recorded by hand (no batch): not a member's, so it stays.
      { sampleId: s3.id, kind: 'seed_import', detail: { line: 7 } },
      { sampleId: s3.id, kind: 'expansion', parentSampleId: s1.id, detail: { k: 1 } },
    ]);

    const result = await withClient(db.pool, (client) => migrate(client));
    expect(result.applied).toEqual(fromThisOn.map((m) => m.name));
    const kept = await db.pool.query<{ sample_id: string; kind: string }>(
      'SELECT sample_id, kind FROM sample_origins ORDER BY id',
    );
    expect(kept.rows).toEqual([
      { sample_id: s3.id, kind: 'seed_import' },
      { sample_id: s3.id, kind: 'expansion' },
    ]);
    for (const [sample, at] of [
      [s1, 1],
      [s2, 2],
    ] as const)
      expect((await getLineage(db.pool, sample.id)).origins).toEqual([
        { kind: 'seed_import', loopName: null, iteration: null, detail: { batch, file: 'old.jsonl', line: at } },
      ]);
    expect((await getLineage(db.pool, s3.id)).origins.map((o) => o.kind)).toEqual(['seed_import', 'expansion']);
  });
});
