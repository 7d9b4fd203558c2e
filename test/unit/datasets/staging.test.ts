import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { InjectDataInput } from '../../../core/inputs.js';
import { formatDuration, injectionBatchId } from '../../../datasets/staging.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'looptool-staging-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('injection batch ids', () => {
  test('derive from the content and the loop: same bytes under any name are one batch, another loop another', async () => {
    const file = path.join(dir, 'a.jsonl');
    writeFileSync(file, '{"x": 1}\n');
    const copy = path.join(dir, 'b.jsonl');
    copyFileSync(file, copy);
    const other = path.join(dir, 'c.jsonl');
    writeFileSync(other, '{"x": 2}\n');

    const id = (loopName: string, f: string, format: 'openai' | 'sharegpt' = 'openai') =>
      injectionBatchId({ loopName, file: f, format }).then((r) => r.batchId);
    const base = await id('loop-a', file);
    expect(await id('loop-a', copy)).toBe(base);
    expect(await id('loop-b', file)).not.toBe(base);
    expect(await id('loop-a', other)).not.toBe(base);
    // The same bytes read as another format are other samples.
    expect(await id('loop-a', file, 'sharegpt')).not.toBe(base);
    // The loop's update accepts it as a batch `looptool inject` staged.
    expect(InjectDataInput.safeParse({ stagingBatchId: base, idempotencyKey: base }).success).toBe(true);
  });

  test('a file that cannot be read twice (a pipe) or at all is refused clearly', async () => {
    await expect(injectionBatchId({ loopName: 'l', file: path.join(dir, 'none'), format: 'openai' })).rejects.toThrow(
      /^cannot read .*none: ENOENT/,
    );
    await expect(injectionBatchId({ loopName: 'l', file: dir, format: 'openai' })).rejects.toThrow(
      /not a regular file; injections are named by their content/,
    );
  });

  test('ages read as a person says them', () => {
    expect([0, 59, 60, 3599, 3600, 86_399, 86_400 * 3 + 7200].map(formatDuration)).toEqual([
      '0 s',
      '59 s',
      '1 min',
      '59 min',
      '1 h 0 min',
      '23 h 59 min',
      '3 d 2 h',
    ]);
  });
});
