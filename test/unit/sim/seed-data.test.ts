import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { checkSample } from '../../../core/checker/index.js';
import { openAiChatToSamples } from '../../../core/formats/openai-chat.js';
import { parseJson } from '../../../core/json.js';
import { sampleId, type Sample } from '../../../core/schemas/sample.js';
import { CALL_ERROR_KINDS } from '../../../sim/mutations.js';
import { corruptedSampleIds, generateSeedData, writeSeedData } from '../../../sim/seed-data.js';
import { getWorld } from '../../../sim/world.js';

const world = getWorld();
const scratch = mkdtempSync(path.join(os.tmpdir(), 'sim-seed-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Whether a sample's label is what the world says the truth is (the exact checker decides). */
function labelIsTrue(sample: Sample): boolean {
  const truth = world.solve(sample);
  if (truth === undefined) throw new Error('the world cannot solve its own seed sample');
  const reference: Sample = {
    ...sample,
    target: truth === 'no_call' ? { kind: 'text' } : { kind: 'calls', calls: truth },
  };
  const target = sample.target;
  const reply =
    target.kind === 'calls'
      ? { content: null, tool_calls: target.calls.map((c) => ({ function: { name: c.name, arguments: c.arguments } })) }
      : target.kind === 'text'
        ? (target.text ?? '')
        : '';
  return checkSample({ sample: reference, reply, config: { mode: 'exact' } }).valid;
}

describe('seed data', () => {
  const samples = generateSeedData({ count: 1000, seed: 11, wrongLabelRate: 0.15 });

  test('is deterministic for a seed and different for another seed', () => {
    const again = generateSeedData({ count: 1000, seed: 11, wrongLabelRate: 0.15 });
    expect(again.map((s) => s.id)).toEqual(samples.map((s) => s.id));
    const other = generateSeedData({ count: 1000, seed: 12, wrongLabelRate: 0.15 });
    expect(other.map((s) => s.id)).not.toEqual(samples.map((s) => s.id));
  });

  test('has exactly the requested share of wrong labels, and every label is right or wrong as reported', () => {
    const corrupted = samples.filter((s) => s.corruption);
    expect(corrupted).toHaveLength(150);
    for (const s of samples)
      expect(labelIsTrue(s.sample), `sample ${s.index} (${s.corruption ?? 'clean'})`).toBe(s.corruption === undefined);
  });

  test('corrupts labels the realistic ways: wrong value, missing or extra argument, wrong function, dropped parallel call, call where none fits', () => {
    const kinds = new Set(samples.flatMap((s) => (s.corruption ? [s.corruption] : [])));
    for (const kind of kinds) expect(CALL_ERROR_KINDS).toContain(kind);
    expect(kinds.size).toBeGreaterThanOrEqual(5);
    for (const s of samples.filter((x) => x.corruption === 'dropped_call')) {
      expect(s.sample.target.kind === 'calls' && s.sample.target.calls.length).toBeLessThan(
        (s.trueTarget as { calls: unknown[] }).calls.length,
      );
    }
  });

  test('covers every profile and never repeats a conversation', () => {
    const profiles = new Set(samples.map((s) => s.profile));
    expect(profiles.size).toBe(7);
    expect(new Set(samples.map((s) => s.id)).size).toBe(samples.length);
  });

  test('the reported corrupted ids are the ids the dataset store will give those samples', async () => {
    const file = path.join(scratch, 'seed.jsonl');
    const corruptedOut = path.join(scratch, 'corrupted.jsonl');
    const summary = await writeSeedData(file, { count: 300, seed: 5, wrongLabelRate: 0.2, corruptedOut });
    expect(summary).toMatchObject({ written: 300, corrupted: 60 });
    const ids: string[] = [];
    for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
      const record = parseJson(line);
      if (!record.ok) throw new Error(record.error.message);
      const converted = openAiChatToSamples(record.value);
      if (!converted.ok) throw new Error(converted.rejection.reason);
      ids.push(sampleId(converted.value[0] as Sample));
    }
    const expected = corruptedSampleIds({ count: 300, seed: 5, wrongLabelRate: 0.2 });
    expect(expected.size).toBe(60);
    for (const id of expected.keys()) expect(ids).toContain(id);
    const listed = readFileSync(corruptedOut, 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { id: string; corruption: string });
    expect(new Set(listed.map((l) => l.id))).toEqual(new Set(expected.keys()));
  });

  test('keeps floats as floats on the wire', () => {
    const text = samples.map((s) => JSON.stringify(s.record)).join('\n');
    expect(text).toMatch(/\\"(amount|monthly_limit|temperature|principal)\\":\d+\.\d+/);
  });
});
