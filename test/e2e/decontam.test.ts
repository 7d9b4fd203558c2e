import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildLoopReport, renderReportHtml } from '../../client/report.js';
import { LoopConfig } from '../../core/config.js';
import { buildEvalIndex, checkCandidates, decontaminateVersion, storeEvalIndex } from '../../datasets/decontam.js';
import {
  contaminatedSampleSql,
  DecontaminationIncompleteError,
  removeContaminatedMembers,
} from '../../db/queries/decontam.js';
import { registerLoop } from '../../db/queries/loops.js';
import { getSamples, insertSamples } from '../../db/queries/samples.js';
import { addMembers, createVersion, freezeVersion, getVersion, inheritMembers } from '../../db/queries/versions.js';
import { withTransaction } from '../../db/tx.js';
import { createActivities, createActivityDeps } from '../../activities/index.js';
import { runLooptool } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { storedSample } from '../helpers/samples.js';
import { runActivity } from '../helpers/stages.js';

/** Two BFCL-style evaluation questions: a long one (13-grams apply) and a short one (counted whole). */
const LONG_QUESTION =
  'Find the area of a triangle with a base of 10 units and a height of 5 units, rounded to two decimals.';
const SHORT_QUESTION = 'Calculate the factorial of 5 using math functions.';
const EVAL_RECORDS = [
  {
    id: 'simple_python_0',
    question: [[{ role: 'user', content: LONG_QUESTION }]],
    function: [{ name: 'calculate_triangle_area', parameters: { type: 'dict', properties: {} } }],
  },
  {
    id: 'simple_python_1',
    question: [[{ role: 'user', content: SHORT_QUESTION }]],
    function: [{ name: 'math.factorial', parameters: { type: 'dict', properties: {} } }],
  },
];

const tool = (name: string) => ({
  type: 'function',
  function: { name, parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } },
});

/** One training record (OpenAI chat): `marker` makes each sample findable by its text. */
const record = (marker: string, userText: string, toolName = 'lookup_inventory_record') =>
  JSON.stringify({
    tools: [tool(toolName)],
    messages: [
      { role: 'user', content: `${marker} ${userText}` },
      {
        role: 'assistant',
        content: null,
        tool_calls: [{ type: 'function', function: { name: toolName, arguments: JSON.stringify({ q: marker }) } }],
      },
    ],
  });

const CLEAN = [
  record('[clean-1]', 'How many bolts are left in warehouse seven?'),
  record('[clean-2]', 'Find the area code of Springfield, please.'),
  // The short question's first tokens, but not all of them: not a copy.
  record('[clean-3]', 'Calculate the factorial of 5 now.'),
  record('[clean-4]', 'Look up the stock of red paint in aisle three.'),
];
const COPIED_TEXT = record('[copied-text]', `Hey, ${LONG_QUESTION.toUpperCase()} Thanks!`);
const COPIED_SHORT = record('[copied-short]', `${SHORT_QUESTION} Quickly.`);
const COPIED_TOOL = record('[copied-tool]', 'What is six factorial?', 'math_factorial');

describe('decontamination: looptool data decontam, the stored checks and the assembly exclusion', () => {
  let db: TestDatabase;
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  let evalFile: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-decontam-'));
    env = { ...process.env, DATABASE_URL: db.url };
    evalFile = path.join(scratch, 'BFCL_v4_mini.json');
    writeFileSync(evalFile, EVAL_RECORDS.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const train = path.join(scratch, 'train.jsonl');
    writeFileSync(train, [...CLEAN, COPIED_TEXT, COPIED_SHORT, COPIED_TOOL].join('\n') + '\n');
    const imported = await runLooptool(['data', 'import', train, '--format', 'openai', '--name', 'mixed'], { env });
    expect(imported.stdout).toContain('mixed@1: 7 samples');
  });
  afterAll(async () => {
    await db?.drop();
    rmSync(scratch, { recursive: true, force: true });
  });

  /** The marker of each sample id, read back from the store. */
  async function markersOf(sampleIds: string[]): Promise<string[]> {
    const samples = await getSamples(db.pool, sampleIds);
    return samples.map((s) => /\[([a-z-]+\d?)\]/.exec(s.messagesJson)![1]!).sort();
  }

  test('the CLI reports exactly the samples that copy a question or offer an evaluation tool, with what they share', async () => {
    const result = await runLooptool(['data', 'decontam', 'mixed@1', '--eval', evalFile, '--json'], { env });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = JSON.parse(result.stdout) as {
      report: { members: number; toolNameOverlaps: number; ngramOverlaps: number; bothOverlaps: number };
      contaminated: number;
      checkedNow: number;
      samples: { sampleId: string; toolNames: string[]; questions: string[] }[];
    };
    expect(out.report).toMatchObject({ members: 7, toolNameOverlaps: 1, ngramOverlaps: 2, bothOverlaps: 0 });
    expect(out.contaminated).toBe(3);
    expect(out.checkedNow).toBe(7);
    expect(await markersOf(out.samples.map((s) => s.sampleId))).toEqual(['copied-short', 'copied-text', 'copied-tool']);
    const byMarker = new Map(
      await Promise.all(out.samples.map(async (s) => [(await markersOf([s.sampleId]))[0]!, s] as const)),
    );
    expect(byMarker.get('copied-text')).toMatchObject({ toolNames: [], questions: ['BFCL_v4_mini/simple_python_0'] });
    expect(byMarker.get('copied-short')).toMatchObject({ toolNames: [], questions: ['BFCL_v4_mini/simple_python_1'] });
    expect(byMarker.get('copied-tool')).toMatchObject({ toolNames: ['math_factorial'], questions: [] });
  });

  test('asking again checks nothing twice and reports the same; the text form names the counts', async () => {
    const result = await runLooptool(['data', 'decontam', 'mixed@1', '--eval', evalFile], { env });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/mixed@1 \(id \d+\): 7 samples against 1 evaluation file\(s\), 2 questions/);
    expect(result.stdout).toContain('0 samples checked now');
    expect(result.stdout).toMatch(/tool names\s+1\b/);
    expect(result.stdout).toMatch(/n-grams\s+2\b/);
    expect(result.stdout).toMatch(/contaminated \(either\)\s+3\b/);
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM decontam_reports');
    expect(rows[0]!.n).toBe(1);
  });

  test('a loop config supplies the sets and settings: with tool names not counted, only the copies are contaminated', async () => {
    const config = LoopConfig.parse({
      data: { seedDataset: 'mixed' },
      models: { policy: { model: 'p' }, judge: { model: 'j' }, generator: { model: 'g' } },
      training: { backend: 'sim', url: 'http://127.0.0.1:9' },
      evaluation: { sets: [{ name: 'mini', files: [{ questions: evalFile }] }] },
      decontamination: { toolNames: false },
    });
    await registerLoop(db.pool, { name: 'decontam-loop', config, configHash: 'h', workflowId: 'loop/decontam-loop' });
    const result = await runLooptool(['data', 'decontam', 'mixed@1', '--loop', 'decontam-loop', '--json'], { env });
    expect(result.stderr).toBe('');
    const out = JSON.parse(result.stdout) as { contaminated: number; samples: { questions: string[] }[] };
    expect(out.contaminated).toBe(2);
    // Another set name is another index: its questions are named after it.
    expect(out.samples.flatMap((s) => s.questions).sort()).toEqual(['mini/simple_python_0', 'mini/simple_python_1']);
  });

  test('bad input: no sets named, a missing file, a file that is not BFCL questions; each says which and where', async () => {
    const none = await runLooptool(['data', 'decontam', 'mixed@1'], { env });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('exactly one of --eval');
    const missing = path.join(scratch, 'nope.json');
    const gone = await runLooptool(['data', 'decontam', 'mixed@1', '--eval', missing], { env });
    expect(gone.code).not.toBe(0);
    expect(gone.stderr).toContain(`cannot read ${missing}`);
    const bad = path.join(scratch, 'bad.json');
    writeFileSync(bad, `${JSON.stringify(EVAL_RECORDS[0])}\n{"id": "x", "question": "not turns"}\n`);
    const malformed = await runLooptool(['data', 'decontam', 'mixed@1', '--eval', bad], { env });
    expect(malformed.code).not.toBe(0);
    expect(malformed.stderr).toContain(`${bad}:2: question`);
  });

  test('removeContaminatedMembers takes exactly the overlapping members out of an open version', async () => {
    const built = await buildEvalIndex({
      sets: [{ name: 'mini', files: [{ questions: evalFile }] }],
      settings: { ngram: 13, minQuestionTokens: 8 },
    });
    const indexId = await storeEvalIndex(db.pool, built);
    const seed = await getVersion(db.pool, 'mixed@1');
    const open = await createVersion(db.pool, { dataset: 'assembled', idempotencyKey: 'test:assembled:1' });
    await inheritMembers(db.pool, { versionId: open.id, fromVersionId: seed.id });
    // What an assembly does first: check every candidate (here the seed pool); already checked by the loop test.
    expect(await checkCandidates(db.pool, { built, indexId, sources: { versionIds: [seed.id] } })).toEqual({
      checked: 0,
      overlapping: 0,
    });
    // The predicate for assembly's member SELECTs picks the same samples.
    const { rows: flagged } = await db.pool.query<{ id: string }>(
      `SELECT s.id FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
       WHERE m.version_id = $1::bigint AND ${contaminatedSampleSql('m.sample_seq', '$2::bigint', '$3::boolean')}`,
      [open.id, indexId, true],
    );
    expect(await markersOf(flagged.map((r) => r.id))).toEqual(['copied-short', 'copied-text', 'copied-tool']);

    const removed = await withTransaction(db.pool, (tx) =>
      removeContaminatedMembers(tx, { versionId: open.id, indexId, toolNames: true }),
    );
    expect(removed).toEqual({ removed: 3, byRole: { seed: 3 } });
    const frozen = await freezeVersion(db.pool, open.id);
    expect(frozen.memberCount).toBe(4);
    const { rows: left } = await db.pool.query<{ id: string }>(
      'SELECT s.id FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $1::bigint',
      [open.id],
    );
    expect(await markersOf(left.map((r) => r.id))).toEqual(['clean-1', 'clean-2', 'clean-3', 'clean-4']);
  });

  test('with tool names not counted only copies go; a member never checked makes it refuse, removing nothing', async () => {
    const built = await buildEvalIndex({
      sets: [{ name: 'mini', files: [{ questions: evalFile }] }],
      settings: { ngram: 13, minQuestionTokens: 8 },
    });
    const indexId = await storeEvalIndex(db.pool, built);
    const seed = await getVersion(db.pool, 'mixed@1');
    const open = await createVersion(db.pool, { dataset: 'assembled', idempotencyKey: 'test:assembled:2' });
    await inheritMembers(db.pool, { versionId: open.id, fromVersionId: seed.id });
    const stranger = storedSample(9001);
    await insertSamples(db.pool, [stranger]);
    await addMembers(db.pool, open.id, [{ sampleId: stranger.id, role: 'injected' }]);
    const refused = withTransaction(db.pool, (tx) =>
      removeContaminatedMembers(tx, { versionId: open.id, indexId, toolNames: false }),
    );
    await expect(refused).rejects.toThrow(DecontaminationIncompleteError);
    await expect(refused).rejects.toThrow(/1 members of dataset version id \d+ were never checked/);

    // The staging-batch and iteration sources are covered by the same paging; here the open version itself.
    expect(await checkCandidates(db.pool, { built, indexId, sources: { versionIds: [open.id] } })).toEqual({
      checked: 1,
      overlapping: 0,
    });
    const removed = await withTransaction(db.pool, (tx) =>
      removeContaminatedMembers(tx, { versionId: open.id, indexId, toolNames: false }),
    );
    expect(removed).toEqual({ removed: 2, byRole: { seed: 2 } });
  });

  test("a loop's report has a decontamination section per checked version, and its JSON the numbers", async () => {
    const seed = await getVersion(db.pool, 'mixed@1');
    const d1 = await createVersion(db.pool, {
      dataset: 'decontam-loop',
      idempotencyKey: 'loop:decontam-loop:iter:1',
      loopName: 'decontam-loop',
      iteration: 1,
    });
    await inheritMembers(db.pool, { versionId: d1.id, fromVersionId: seed.id, role: 'seed_new' });
    await freezeVersion(db.pool, d1.id);
    const { report } = await decontaminateVersion(db.pool, {
      versionId: d1.id,
      sets: [{ name: 'mini', files: [{ questions: evalFile }] }],
      settings: { ngram: 13, minQuestionTokens: 8 },
    });
    expect(report).toMatchObject({ ref: 'decontam-loop@1', members: 7, toolNameOverlaps: 1, ngramOverlaps: 2 });
    expect(report.byRole).toEqual({ seed_new: { members: 7, toolName: 1, ngram: 2 } });
    expect(report.topToolNames).toEqual([{ name: 'math_factorial', samples: 1 }]);

    const loopReport = await buildLoopReport(db.pool, 'decontam-loop');
    expect(loopReport.decontamination).toHaveLength(1);
    expect(loopReport.decontamination[0]).toMatchObject({ ref: 'decontam-loop@1', ngramOverlaps: 2 });
    const html = renderReportHtml(loopReport);
    expect(html).toContain('Decontamination');
    expect(html).toContain('<td>decontam-loop@1</td><td>7</td><td>1 (14.3%)</td><td>2 (28.6%)</td>');
  });

  test("decontamination.exclude: the loop's D_1 draw checks its candidates first and leaves the three copies out", async () => {
    await registerLoop(db.pool, { name: 'clean-loop', config: {}, configHash: 'h', workflowId: 'loop/clean-loop' });
    const activities = createActivities(
      createActivityDeps({ pool: db.pool, artifactsDir: path.join(scratch, 'artifacts') }),
    );
    const settings = { exclude: true, ngram: 13, minQuestionTokens: 8, toolNames: true };
    const evalSets = [{ name: 'mini', files: [{ questions: evalFile }] }];
    const checked = await runActivity(activities.checkAssemblyCandidates, [
      { evalSets, settings, versionIds: ['mixed@1'] },
    ]);
    // The earlier tests checked these samples against the same files already: nothing is checked twice.
    expect(checked).toMatchObject({ checked: 0 });
    const d1 = await runActivity(activities.createInitialVersion, [
      {
        loopName: 'clean-loop',
        seedDataset: 'mixed@1',
        size: 7,
        seed: 1,
        heldOutFraction: 0,
        exclusion: { indexId: checked!.indexId, toolNames: true },
        configHash: 'h',
      },
    ]);
    expect(d1.memberCount).toBe(4);
    const members = await db.pool.query<{ id: string }>(
      'SELECT s.id FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $1::bigint',
      [d1.versionId],
    );
    expect(await markersOf(members.rows.map((r) => r.id))).toEqual(['clean-1', 'clean-2', 'clean-3', 'clean-4']);
  });
});
