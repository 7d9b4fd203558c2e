import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LOOPTOOL_BIN, runLooptool } from '../helpers/cli.js';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'sim-cli-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('looptool sim, as a user runs it', () => {
  test('sim seed writes the same file for the same seed and reports the wrong labels', async () => {
    const first = path.join(scratch, 'a.jsonl');
    const second = path.join(scratch, 'b.jsonl');
    const corrupted = path.join(scratch, 'bad.jsonl');
    const run = await runLooptool([
      'sim',
      'seed',
      '--out',
      first,
      '--count',
      '200',
      '--seed',
      '3',
      '--wrong-label-rate',
      '0.1',
      '--corrupted-out',
      corrupted,
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`Wrote 200 samples to ${first} (20 with a wrong label).`);
    await runLooptool(['sim', 'seed', '--out', second, '--count', '200', '--seed', '3', '--wrong-label-rate', '0.1']);
    expect(readFileSync(second, 'utf8')).toBe(readFileSync(first, 'utf8'));
    expect(readFileSync(corrupted, 'utf8').trim().split('\n')).toHaveLength(20);
    const bad = await runLooptool(['sim', 'seed', '--out', first, '--wrong-label-rate', '2']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('expected a number from 0 to 1');
  });

  test('sim serve prints its URLs, serves (key-protected, LoRA routes off, when asked), and stops cleanly on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [LOOPTOOL_BIN, 'sim', 'serve', '--port', '0', '--no-bfcl', '--api-key', 'k1', '--no-runtime-lora-updating'],
      { stdio: 'pipe' },
    );
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      for (let i = 0; i < 300 && !stdout.includes('Trainer API'); i++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      const url = /Sim server: (http:\/\/\S+)/.exec(stdout)?.[1];
      expect(url, stdout).toBeDefined();
      expect(stdout).toContain(`OpenAI base URL: ${url}/v1`);
      expect((await fetch(`${url}/health`)).status).toBe(200);
      // As vLLM with --api-key: /v1/* wants the key, /health does not; without runtime LoRA updating its routes 404.
      const auth = { authorization: 'Bearer k1' };
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
      expect((await fetch(`${url}/v1/models`, { headers: auth })).status).toBe(200);
      const load = await fetch(`${url}/v1/load_lora_adapter`, { method: 'POST', headers: auth, body: '{}' });
      expect([load.status, await load.json()]).toEqual([404, { detail: 'Not Found' }]);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout).toContain('Sim server stopped.');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
