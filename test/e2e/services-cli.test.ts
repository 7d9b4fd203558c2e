import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { runLooptool } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

describe('looptool services and demo, as a user runs them', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'looptool-services-'));
  chmodSync(dataDir, 0o755);
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const { TEMPORAL_ADDRESS: _t, DATABASE_URL: _d, ...rest } = process.env;
    env = {
      ...rest,
      LOOPTOOL_DATA_DIR: dataDir,
      TEMPORAL_CLI_PATH: inject('temporalCliPath'),
      LOOPTOOL_TEMPORAL_PORT: String(await freePort()),
      LOOPTOOL_TEMPORAL_UI_PORT: String(await freePort()),
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
    expect(up.stdout).toContain(`Database URL:      postgres://postgres@127.0.0.1:${env.LOOPTOOL_PG_PORT}/looptool (started)`);
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

  test('demo brings the services up, runs a loop to the end and says where the UI is', async () => {
    const demo = await runLooptool(['demo', '--name', 'cli-demo', '--iterations', '2'], { env, timeoutMs: 180_000 });
    expect(demo.code).toBe(0);
    expect(demo.stdout).toMatch(/Loop cli-demo: 2 iterations done/);
    expect(demo.stdout).toContain(`http://127.0.0.1:${env.LOOPTOOL_TEMPORAL_UI_PORT}/namespaces/default/workflows/loop%2Fcli-demo`);
  });
});
