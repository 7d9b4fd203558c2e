import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type ModelCallRow, recordModelCalls } from '../../db/queries/model-calls.js';
import { getLineage, recordOrigins } from '../../db/queries/origins.js';
import { insertProbePage, type ProbeResultRow } from '../../db/queries/probe-results.js';
import { getSamples, insertSamples, resolveSampleId } from '../../db/queries/samples.js';
import {
  addStagingMembers,
  consumeStagingBatch,
  markStagingReady,
  openStagingBatch,
} from '../../db/queries/staging.js';
import {
  addMembers,
  createVersion,
  DatasetVersionError,
  diffVersions,
  freezeVersion,
  getVersion,
  inheritMembers,
  listVersions,
  removeMembers,
  streamMembers,
} from '../../db/queries/versions.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { storedSample } from '../helpers/samples.js';

describe('dataset store on a real PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(
      `INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ('chain', '{}', 'h', 'loop/chain')`,
    );
  });
  afterAll(async () => db?.drop());

  const count = async (table: string) =>
    (await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n as number;
  /** The error a write failed with, or undefined when it succeeded. */
  const refusalOf = (write: Promise<unknown>) =>
    write.then(
      () => undefined,
      (e: unknown) => e as { code?: string; message: string },
    );

  test('a retried batch write adds nothing, and shared tool lists are stored once', async () => {
    const batch = Array.from({ length: 50 }, (_, i) => storedSample(10_000 + i));
    const [samplesBefore, toolsetsBefore] = [await count('samples'), await count('toolsets')];
    const first = await insertSamples(db.pool, batch);
    expect(first.sort()).toEqual(batch.map((s) => s.id).sort());
    expect(await insertSamples(db.pool, batch)).toEqual([]);
    expect(await count('samples')).toBe(samplesBefore + 50);
    expect(await count('toolsets')).toBe(toolsetsBefore + new Set(batch.map((s) => s.toolsetId)).size);
    const [read] = await getSamples(db.pool, [batch[3]!.id]);
    expect(read).toEqual(batch[3]);
  });

  test('stored JSON comes back byte for byte, so int and float stay distinct (5 vs 5.0 vs 1e+16)', async () => {
    const base = storedSample(424242);
    const asFloat = {
      ...base,
      id: 'f'.repeat(63) + '0',
      targetJson: base.targetJson.replace(/"x":(\d+)/, '"x":$1.0,"y":1e+16'),
    };
    await insertSamples(db.pool, [asFloat]);
    const [read] = await getSamples(db.pool, [asFloat.id]);
    expect(read?.targetJson).toBe(asFloat.targetJson);
  });

  test('concurrent writers of overlapping samples neither duplicate nor deadlock', async () => {
    const all = Array.from({ length: 400 }, (_, i) => storedSample(20_000 + i));
    const before = await count('samples');
    const slices = [all.slice(0, 300), all.slice(100, 400), [...all].reverse(), all.filter((_, i) => i % 2 === 0)];
    const results = await Promise.all(slices.map((slice) => insertSamples(db.pool, slice)));
    expect(await count('samples')).toBe(before + 400);
    expect(results.flat().sort()).toEqual(all.map((s) => s.id).sort());
  });

  test('versions are numbered per dataset and created once per idempotency key', async () => {
    const a = await createVersion(db.pool, { dataset: 'numbering', idempotencyKey: 'numbering:1' });
    const again = await createVersion(db.pool, { dataset: 'numbering', idempotencyKey: 'numbering:1' });
    const b = await createVersion(db.pool, { dataset: 'numbering', idempotencyKey: 'numbering:2', parentId: a.id });
    expect(again.id).toBe(a.id);
    expect([a.ref, b.ref]).toEqual(['numbering@1', 'numbering@2']);
    expect((await getVersion(db.pool, 'numbering')).id).toBe(b.id);
    expect((await listVersions(db.pool, { dataset: 'numbering' })).map((v) => v.version)).toEqual([1, 2]);
    await expect(getVersion(db.pool, 'numbering@9')).rejects.toThrow(/no dataset version numbering@9/);
  });

  test('a frozen version cannot change, through the API or through SQL', async () => {
    const samples = Array.from({ length: 5 }, (_, i) => storedSample(30_000 + i));
    await insertSamples(db.pool, samples);
    const version = await createVersion(db.pool, { dataset: 'frozen', idempotencyKey: 'frozen:1' });
    await addMembers(
      db.pool,
      version.id,
      samples.slice(0, 4).map((s) => ({ sampleId: s.id, role: 'seed' as const })),
    );
    const frozen = await freezeVersion(db.pool, version.id);
    expect(frozen).toMatchObject({ status: 'frozen', memberCount: 4, countsByRole: { seed: 4 } });
    expect((await freezeVersion(db.pool, version.id)).frozenAt).toEqual(frozen.frozenAt);

    await expect(addMembers(db.pool, version.id, [{ sampleId: samples[4]!.id, role: 'seed' }])).rejects.toBeInstanceOf(
      DatasetVersionError,
    );
    await expect(removeMembers(db.pool, version.id, [samples[0]!.id])).rejects.toThrow(/frozen/);
    await expect(
      db.pool.query(`INSERT INTO dataset_members SELECT $1, seq, 'seed' FROM samples WHERE id = $2`, [
        version.id,
        samples[4]!.id,
      ]),
    ).rejects.toThrow(/is frozen/);
    await expect(db.pool.query('DELETE FROM dataset_members WHERE version_id = $1', [version.id])).rejects.toThrow(
      /is frozen/,
    );
    await expect(
      db.pool.query(`UPDATE dataset_members SET role = 'injected' WHERE version_id = $1`, [version.id]),
    ).rejects.toThrow(/is frozen/);
    await expect(db.pool.query(`UPDATE dataset_versions SET note = 'x' WHERE id = $1`, [version.id])).rejects.toThrow(
      /is frozen/,
    );
    await expect(db.pool.query('UPDATE samples SET target = $2 WHERE id = $1', [samples[0]!.id, '{}'])).rejects.toThrow(
      /immutable/,
    );
    expect(
      (await db.pool.query('SELECT count(*)::int AS n FROM dataset_members WHERE version_id = $1', [version.id]))
        .rows[0].n,
    ).toBe(4);
  });

  test('diff and lineage answer correctly on a 3-version chain with expansions and relabelings', async () => {
    const seeds = Array.from({ length: 10 }, (_, i) => storedSample(40_000 + i));
    const corrected1 = storedSample(40_001, 1); // the fixed label of seeds[1]
    const expanded1 = [storedSample(41_000), storedSample(41_001)]; // from error seed seeds[2]
    const corrected2 = storedSample(41_000, 1); // the fixed label of an expansion: lineage two deep
    const expanded2 = storedSample(42_000); // expanded from corrected2 in iteration 2
    await insertSamples(db.pool, [...seeds, corrected1, ...expanded1, corrected2, expanded2]);
    await recordOrigins(
      db.pool,
      seeds.map((s, i) => ({ sampleId: s.id, kind: 'seed_import' as const, detail: { line: i + 1 } })),
    );
    await recordOrigins(db.pool, [
      {
        sampleId: corrected1.id,
        kind: 'label_correction',
        parentSampleId: seeds[1]!.id,
        loopName: 'chain',
        iteration: 1,
      },
      ...expanded1.map((s, k) => ({
        sampleId: s.id,
        kind: 'expansion' as const,
        parentSampleId: seeds[2]!.id,
        loopName: 'chain',
        iteration: 1,
        detail: { k },
      })),
      {
        sampleId: corrected2.id,
        kind: 'label_correction',
        parentSampleId: expanded1[0]!.id,
        loopName: 'chain',
        iteration: 2,
      },
      {
        sampleId: expanded2.id,
        kind: 'expansion',
        parentSampleId: corrected2.id,
        loopName: 'chain',
        iteration: 2,
        detail: { k: 0 },
      },
    ]);
    // Recording the same origins again changes nothing.
    expect(
      await recordOrigins(db.pool, [
        { sampleId: expanded2.id, kind: 'expansion', parentSampleId: corrected2.id, loopName: 'chain', iteration: 2 },
      ]),
    ).toBe(0);

    const v1 = await createVersion(db.pool, {
      dataset: 'chain',
      idempotencyKey: 'chain:1',
      loopName: 'chain',
      iteration: 1,
    });
    await addMembers(
      db.pool,
      v1.id,
      seeds.slice(0, 8).map((s) => ({ sampleId: s.id, role: 'seed' as const })),
    );
    await freezeVersion(db.pool, v1.id);

    // D2: error seeds kept (one relabeled), two expansions, two seeds dropped, two new seeds.
    const v2 = await createVersion(db.pool, {
      dataset: 'chain',
      idempotencyKey: 'chain:2',
      parentId: v1.id,
      loopName: 'chain',
      iteration: 2,
    });
    await inheritMembers(db.pool, { versionId: v2.id, fromVersionId: v1.id, role: 'high_ppl' });
    await removeMembers(db.pool, v2.id, [seeds[1]!.id, seeds[2]!.id, seeds[6]!.id, seeds[7]!.id]);
    await addMembers(db.pool, v2.id, [
      { sampleId: corrected1.id, role: 'relabeled' },
      { sampleId: seeds[2]!.id, role: 'error_seed' },
      ...expanded1.map((s) => ({ sampleId: s.id, role: 'expanded' as const })),
      { sampleId: seeds[8]!.id, role: 'seed_new' },
      { sampleId: seeds[9]!.id, role: 'seed_new' },
    ]);
    await freezeVersion(db.pool, v2.id);

    // D3: the first expansion's label corrected, its correction expanded again.
    const v3 = await createVersion(db.pool, {
      dataset: 'chain',
      idempotencyKey: 'chain:3',
      parentId: v2.id,
      loopName: 'chain',
      iteration: 3,
    });
    await inheritMembers(db.pool, { versionId: v3.id, fromVersionId: v2.id });
    await removeMembers(db.pool, v3.id, [expanded1[0]!.id]);
    await addMembers(db.pool, v3.id, [
      { sampleId: corrected2.id, role: 'relabeled' },
      { sampleId: expanded2.id, role: 'expanded' },
    ]);
    const frozen3 = await freezeVersion(db.pool, v3.id);
    expect(frozen3.countsByRole).toEqual({ high_ppl: 4, relabeled: 2, error_seed: 1, expanded: 2, seed_new: 2 });

    expect(await diffVersions(db.pool, 'chain@1', 'chain@2')).toEqual({
      from: 'chain@1',
      to: 'chain@2',
      added: 4,
      removed: 2,
      relabeled: 1,
      roleChanged: 5,
      unchanged: 0,
      addedByRole: { expanded: 2, seed_new: 2 },
      removedByRole: { seed: 2 },
      addedByOrigin: { expansion: 2, seed_import: 2 },
      removedByOrigin: { seed_import: 2 },
    });
    const d23 = await diffVersions(db.pool, 'chain@2', 'chain@3');
    expect(d23).toMatchObject({
      added: 1,
      removed: 0,
      relabeled: 1,
      unchanged: 9,
      addedByRole: { expanded: 1 },
      addedByOrigin: { expansion: 1 },
    });
    const d13 = await diffVersions(db.pool, 'chain@1', 'chain@3');
    // Across two steps the expansion-then-relabel is an addition (its parent was never in chain@1).
    expect(d13).toMatchObject({ relabeled: 1, removed: 2, added: 5, roleChanged: 5 });

    const lineage = await getLineage(db.pool, expanded2.id);
    expect(lineage.ancestors.map((e) => [e.depth, e.kind, e.parentSampleId])).toEqual([
      [1, 'expansion', corrected2.id],
      [2, 'label_correction', expanded1[0]!.id],
      [3, 'expansion', seeds[2]!.id],
    ]);
    const fromSeed = await getLineage(db.pool, seeds[2]!.id);
    expect(fromSeed.origins).toEqual([{ kind: 'seed_import', loopName: null, iteration: null, detail: { line: 3 } }]);
    expect(fromSeed.descendants.map((e) => [e.depth, e.sampleId])).toEqual([
      [1, expanded1[0]!.id < expanded1[1]!.id ? expanded1[0]!.id : expanded1[1]!.id],
      [1, expanded1[0]!.id < expanded1[1]!.id ? expanded1[1]!.id : expanded1[0]!.id],
      [2, corrected2.id],
      [3, expanded2.id],
    ]);
    expect(await resolveSampleId(db.pool, expanded2.id.slice(0, 12))).toBe(expanded2.id);
  });

  test('members stream in keyset pages that cover the version exactly once', async () => {
    const samples = Array.from({ length: 23 }, (_, i) => storedSample(50_000 + i));
    await insertSamples(db.pool, samples);
    const version = await createVersion(db.pool, { dataset: 'paged', idempotencyKey: 'paged:1' });
    await addMembers(
      db.pool,
      version.id,
      samples.map((s) => ({ sampleId: s.id, role: 'seed' as const })),
    );
    const pages: number[] = [];
    const seen: string[] = [];
    for await (const page of streamMembers(db.pool, version.id, { pageSize: 5 })) {
      pages.push(page.length);
      seen.push(...page.map((m) => m.sampleId));
    }
    expect(pages).toEqual([5, 5, 5, 5, 3]);
    expect([...seen].sort()).toEqual(samples.map((s) => s.id).sort());
    expect(new Set(seen).size).toBe(23);
  });

  test('references an import writes are checked per statement: a missing sample, toolset or batch is refused', async () => {
    const [sample] = [storedSample(70_000)];
    await insertSamples(db.pool, [sample!]);
    const batch = await openStagingBatch(db.pool, {
      id: 'refs-1',
      purpose: 'import',
      target: 'refs',
      source: 'x.jsonl',
      format: 'openai',
    });
    const missing = 'e'.repeat(64);
    const refused = async (sql: string, params: unknown[]) => {
      const err = await refusalOf(db.pool.query(sql, params));
      expect(err?.code).toBe('23503');
      return err!.message;
    };
    expect(
      await refused(`INSERT INTO staging_members (batch_id, sample_id, line) VALUES ($1, $2, 1), ($1, $3, 2)`, [
        batch.id,
        sample!.id,
        missing,
      ]),
    ).toMatch(/staging_members.*"samples".*sample_id = e{64}/);
    expect(
      await refused(`INSERT INTO staging_members (batch_id, sample_id, line) VALUES ('no-such-batch', $1, 1)`, [
        sample!.id,
      ]),
    ).toMatch(/"staging_batches".*batch_id = no-such-batch/);
    await refused(`INSERT INTO sample_origins (sample_id, kind) VALUES ($1, 'seed_import')`, [missing]);
    await refused(`INSERT INTO samples (id, toolset_id, messages, target) VALUES ($1, $1, '[]', '{}')`, [missing]);
    await db.pool.query(`INSERT INTO staging_members (batch_id, sample_id, line) VALUES ($1, $2, 1)`, [
      batch.id,
      sample!.id,
    ]);
    await refused(`UPDATE staging_members SET sample_id = $2 WHERE batch_id = $1`, [batch.id, missing]);
    expect(await refused(`DELETE FROM staging_batches WHERE id = $1`, [batch.id])).toMatch(/still has members/);
    await expect(db.pool.query('TRUNCATE toolsets CASCADE')).rejects.toThrow(/immutable/);
    // The id rule is the same as before: 64 lowercase hex digits.
    for (const id of ['E'.repeat(64), 'e'.repeat(63), `${'e'.repeat(63)}g`, `${'e'.repeat(64)}\n`])
      await expect(
        db.pool.query(`INSERT INTO samples (id, toolset_id, messages, target) VALUES ($1, $2, '[]', '{}')`, [
          id,
          sample!.toolsetId,
        ]),
      ).rejects.toThrow(/samples_id_check/);
  });

  test('references a probe page writes are checked per statement: a missing loop or sample is refused, and a named loop stays', async () => {
    const [sample] = [storedSample(71_000)];
    await insertSamples(db.pool, [sample!]);
    await db.pool.query(
      `INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ('probed', '{}', 'h', 'loop/probed'),
         ('ledgered', '{}', 'h', 'loop/ledgered'), ('unnamed', '{}', 'h', 'loop/unnamed')`,
    );
    const result = (sampleId: string): ProbeResultRow => ({
      sampleId,
      model: 'm',
      promptVersion: 'none',
      outcome: 'match',
      rawOutput: '[]',
      parsedCalls: '[]',
      errorType: null,
      error: null,
      meanLogprob: -0.1,
      perplexity: 1.1,
      promptTokens: 10,
      completionTokens: 2,
      latencyMs: 1,
    });
    const call = (loopName: string | null, callKey: string): ModelCallRow => ({
      callKey,
      loopName,
      iteration: loopName === null ? null : 1,
      stage: 'probe',
      role: 'policy',
      model: 'm',
      endpoint: 'http://sim',
      promptTokens: 10,
      completionTokens: 2,
      latencyMs: 1,
      ok: true,
    });
    const missing = 'e'.repeat(64);
    const probed = { loopName: 'probed', iteration: 1 };
    // A page naming a sample that is not there writes nothing, its ledger rows included (one statement).
    const noSample = await refusalOf(
      insertProbePage(db.pool, probed, [result(sample!.id), result(missing)], [call('probed', 'probed:missing')]),
    );
    expect(noSample?.code).toBe('23503');
    expect(noSample?.message).toMatch(/probe_results.*"samples".*sample_id = e{64}/);
    const noLoop = await refusalOf(insertProbePage(db.pool, { loopName: 'no-such-loop', iteration: 1 }, [], []));
    expect(noLoop).toBeUndefined(); // nothing written, nothing checked
    expect(
      (await refusalOf(insertProbePage(db.pool, { loopName: 'no-such-loop', iteration: 1 }, [result(sample!.id)], [])))
        ?.code,
    ).toBe('23503');
    expect((await refusalOf(recordModelCalls(db.pool, [call('no-such-loop', 'nsl:1')])))?.message).toMatch(
      /model_calls.*"loops".*loop_name = no-such-loop/,
    );
    expect(
      (await db.pool.query(`SELECT count(*)::int AS n FROM model_calls WHERE call_key = 'probed:missing'`)).rows[0].n,
    ).toBe(0);
    // Valid rows are written; a ledger row without a loop (a CLI call) needs none.
    expect(await insertProbePage(db.pool, probed, [result(sample!.id)], [call('probed', 'probed:1')])).toBe(1);
    await recordModelCalls(db.pool, [call('ledgered', 'ledgered:1'), call(null, 'no-loop:1')]);
    await expect(
      db.pool.query(`UPDATE probe_results SET sample_id = $1 WHERE loop_name = 'probed'`, [missing]),
    ).rejects.toMatchObject({ code: '23503' });
    // A loop that results or ledger rows name can be neither deleted nor renamed; one they do not name can.
    for (const name of ['probed', 'ledgered']) {
      expect((await refusalOf(db.pool.query(`DELETE FROM loops WHERE name = $1`, [name])))?.message).toMatch(
        new RegExp(`"loops" leaves (probe_results|model_calls)\\.loop_name = ${name} without its row`),
      );
      expect(
        (await refusalOf(db.pool.query(`UPDATE loops SET name = $1 WHERE name = $2`, [`${name}-2`, name])))?.code,
      ).toBe('23503');
    }
    await db.pool.query(`UPDATE loops SET updated_at = now() WHERE name IN ('probed', 'ledgered')`);
    await db.pool.query(`UPDATE loops SET name = 'unnamed-2' WHERE name = 'unnamed'`);
    await db.pool.query(`DELETE FROM loops WHERE name = 'unnamed-2'`);
    expect(
      (await db.pool.query(`SELECT count(*)::int AS n FROM loops WHERE name IN ('probed', 'ledgered')`)).rows[0].n,
    ).toBe(2);
  });

  test('a staging batch is consumed by one version only, however often it is retried', async () => {
    const samples = Array.from({ length: 3 }, (_, i) => storedSample(60_000 + i));
    await insertSamples(db.pool, samples);
    const batch = await openStagingBatch(db.pool, {
      id: 'inject-1',
      purpose: 'injection',
      target: 'chain',
      source: 'x.jsonl',
      format: 'openai',
    });
    expect(
      await addStagingMembers(
        db.pool,
        batch.id,
        samples.map((s, i) => ({ sampleId: s.id, line: i + 1 })),
      ),
    ).toBe(3);
    expect(await addStagingMembers(db.pool, batch.id, [{ sampleId: samples[0]!.id, line: 9 }])).toBe(0);
    await markStagingReady(db.pool, batch.id, { imported: 3, duplicates: 0, rejected: 0 });
    const [first, second] = [
      await createVersion(db.pool, { dataset: 'inject', idempotencyKey: 'inject:1' }),
      await createVersion(db.pool, { dataset: 'inject', idempotencyKey: 'inject:2' }),
    ];
    expect(await consumeStagingBatch(db.pool, batch.id, first.id)).toBe(true);
    expect(await consumeStagingBatch(db.pool, batch.id, first.id)).toBe(true);
    expect(await consumeStagingBatch(db.pool, batch.id, second.id)).toBe(false);
  });
});
