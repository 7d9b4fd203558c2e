import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { runLooptool } from '../helpers/cli.js';
import { freePort, freeTemporalPorts } from '../helpers/ports.js';

describe('looptool services and demo, as a user runs them', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'looptool-services-'));
  chmodSync(dataDir, 0o755);
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const { TEMPORAL_ADDRESS: _t, DATABASE_URL: _d, ...rest } = process.env;
    const temporalPorts = await freeTemporalPorts();
    env = {
      ...rest,
      LOOPTOOL_DATA_DIR: dataDir,
      TEMPORAL_CLI_PATH: inject('temporalCliPath'),
      LOOPTOOL_TEMPORAL_PORT: String(temporalPorts.port),
      LOOPTOOL_TEMPORAL_UI_PORT: String(temporalPorts.uiPort),
      LOOPTOOL_PG_PORT: String(await freePort()),
    };
  });
  afterAll(async () => {
    await runLooptool(['services', 'down'], { env });
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('up starts both and prints their addresses; a second up reuses them; down stops them; status says so', async () => {
    const up = await runLooptool(['services', 'up'], { env });
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`Temporal address:  127.0.0.1:${env.LOOPTOOL_TEMPORAL_PORT} (started)`);
    expect(up.stdout).toContain(`Temporal UI:       http://127.0.0.1:${env.LOOPTOOL_TEMPORAL_UI_PORT}`);
    expect(up.stdout).toContain(
      `Database URL:      postgres://postgres@127.0.0.1:${env.LOOPTOOL_PG_PORT}/looptool (started)`,
    );
    expect(up.stdout).toMatch(/Applied migrations: 0001_loops\.sql/);

    const again = await runLooptool(['services', 'up'], { env });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('(reused)');
    expect(again.stdout).not.toContain('(started)');
    expect(again.stdout).not.toContain('Applied migrations');

    const status = await runLooptool(['services', 'status', '--json'], { env });
    expect(JSON.parse(status.stdout)).toMatchObject({ temporal: { running: true }, postgres: { running: true } });

    const down = await runLooptool(['services', 'down'], { env });
    expect(down.stdout).toMatch(/Temporal dev server: stopped\s+PostgreSQL:\s+stopped/);
    const after = await runLooptool(['services', 'status', '--json'], { env });
    expect(JSON.parse(after.stdout)).toMatchObject({ temporal: { running: false }, postgres: { running: false } });
  });

  test('demo runs the whole loop on the simulated stack: accuracy rises, labels get corrected, expansions accepted', async () => {
    const demo = await runLooptool(['demo', '--name', 'cli-demo'], { env, timeoutMs: 240_000 });
    expect(demo.stderr).not.toMatch(/Error/);
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/loop cli-demo: completed, iteration 3\/3, stage done/);
    const accuracies = [...demo.stdout.matchAll(/^(\d) (?:\(base\))?.*?(\d+\.\d)%$/gm)].map((m) => [
      Number(m[1]),
      Number(m[2]),
    ]);
    expect(accuracies.map(([iteration]) => iteration)).toEqual([0, 1, 2, 3]);
    const values = accuracies.map(([, accuracy]) => accuracy!);
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
    // Eq. 5 with the defaults: D_2 and D_3 hold high-perplexity samples and exactly the budget (|D_1|).
    const lines = demo.stdout.split('\n');
    const header = lines
      .find((l) => l.startsWith('iter ') && l.includes('high_ppl'))!
      .trim()
      .split(/\s+/);
    const roles = ['error_seed', 'relabeled', 'expanded', 'high_ppl', 'seed_new', 'injected'];
    const row = (j: number) => {
      const cells = lines
        .find((l) => l.startsWith(`${j} `))!
        .trim()
        .split(/\s+/);
      return (name: string) => Number(cells[header.indexOf(name)]);
    };
    const total = (j: number) => roles.reduce((sum, role) => sum + row(j)(role), 0);
    for (const j of [2, 3]) {
      expect(row(j)('high_ppl')).toBeGreaterThan(0);
      expect(total(j)).toBe(total(1));
    }
    expect(Number(/Labels corrected: (\d+)/.exec(demo.stdout)?.[1])).toBeGreaterThan(0);
    expect(Number(/Expansions: .*accepted (\d+)/.exec(demo.stdout)?.[1])).toBeGreaterThan(0);
    expect(demo.stdout).toContain(
      `http://127.0.0.1:${env.LOOPTOOL_TEMPORAL_UI_PORT}/namespaces/default/workflows/loop%2Fcli-demo`,
    );
    const report = /Report:\s+(\S+report\.html)/.exec(demo.stdout)?.[1];
    expect(report && readFileSync(report, 'utf8')).toContain('<h1>Loop cli-demo</h1>');
  });
});
