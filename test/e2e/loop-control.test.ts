import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { stringify } from 'yaml';
import { writeSeedData } from '../../sim/seed-data.js';
import { runLooptool } from '../helpers/cli.js';
import { createLoopFixture, type LoopFixture, waitFor } from '../helpers/loop-fixture.js';
import { quietTemporalLogs } from '../helpers/temporal.js';

describe('steering a running loop through the CLI', () => {
  let f: LoopFixture;
  beforeAll(async () => {
    quietTemporalLogs();
    f = await createLoopFixture({ samples: 200, trainSeconds: 1 });
  });
  afterAll(async () => f?.close());

  test('pause holds the loop, inject lands once in the next dataset, resume continues, stop ends after the iteration; histories replay', async () => {
    // Slow policy answers (about 2 s of probing per iteration) so the pause surely lands inside the first iteration.
    await fetch(`${f.sim.url}/sim/faults`, { method: 'POST', body: JSON.stringify({ role: 'policy', kind: 'latency', latencyMs: 120, count: 1_000_000 }) });
    const config = f.config({ name: 'steered', iterations: 3 });
    const configFile = path.join(os.tmpdir(), `steered-${Date.now()}.yaml`);
    writeFileSync(configFile, stringify(JSON.parse(JSON.stringify(config))));
    const cli = (...args: string[]) => runLooptool(args, { env: f.env });

    const started = await cli('loop', 'start', '--config', configFile);
    expect(started.stdout).toMatch(/Started loop steered/);
    expect((await cli('loop', 'start', '--config', configFile)).stdout).toMatch(/Loop steered already exists .*not started again/);
    const worker = f.startWorker();

    const probed = async () => Number((await f.db.pool.query(`SELECT count(*) AS n FROM probe_results WHERE loop_name = 'steered'`)).rows[0].n);
    await waitFor('probing to start', async () => (await probed()) > 0);
    const paused = await cli('loop', 'pause', 'steered');
    expect(paused.stdout).toMatch(/steered: iteration 1, stage \w+, paused/);
    // In-flight batches finish; then nothing new starts.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const settled = await probed();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    expect(await probed()).toBe(settled);
    const status = JSON.parse((await cli('loop', 'status', 'steered', '--json')).stdout);
    expect(status).toMatchObject({ paused: true, iteration: 1, workflowStatus: 'RUNNING' });

    const extra = path.join(os.tmpdir(), `inject-${Date.now()}.jsonl`);
    await writeSeedData(extra, { count: 12, seed: 99 });
    const injected = await cli('inject', 'steered', extra, '--format', 'openai');
    expect(injected.code).toBe(0);
    expect(injected.stdout).toMatch(/Injected 12 samples .* into steered/);

    const rejected = await f.loops.handle('steered').executeUpdate('injectData', { args: [{ stagingBatchId: 'not-a-batch', idempotencyKey: 'x' }] }).catch((err: Error) => err);
    expect(String((rejected as Error).cause ?? rejected)).toMatch(/stagingBatchId: must name a batch staged by `looptool inject`/);

    expect((await cli('loop', 'resume', 'steered')).stdout).toMatch(/running/);
    const notPaused = await cli('loop', 'resume', 'steered');
    expect(notPaused.code).toBe(1);
    expect(notPaused.stderr).toMatch(/not paused/);

    await waitFor('the second iteration', async () => (await f.loops.status('steered')).iteration === 2);
    expect((await cli('loop', 'stop', 'steered')).stdout).toMatch(/stopping after this iteration/);
    const result = await f.loops.handle('steered').result();
    worker.kill('SIGTERM');
    expect(result.iterations).toBe(2);

    const roles = await f.db.pool.query(
      `SELECT v.iteration, m.role, count(*)::int AS n FROM dataset_versions v JOIN dataset_members m ON m.version_id = v.id
       WHERE v.loop_name = 'steered' GROUP BY 1, 2`,
    );
    expect(roles.rows.filter((r) => r.role === 'injected')).toEqual([{ iteration: 2, role: 'injected', n: 12 }]);
    expect(Math.max(...roles.rows.map((r) => r.iteration))).toBe(2);
    const reportDir = path.join(os.tmpdir(), `steered-report-${Date.now()}`);
    const reported = await cli('loop', 'report', 'steered', '--out', reportDir);
    expect(reported.code).toBe(0);
    // CI installs Chromium (.ci/run), so the PNG charts are made; each starts with the PNG signature.
    expect(reported.stdout).toMatch(/PNG charts: accuracy\.png, composition\.png, judgements\.png, expansions\.png/);
    expect(readFileSync(path.join(reportDir, 'accuracy.png')).subarray(1, 4).toString()).toBe('PNG');
    const html = readFileSync(path.join(reportDir, 'report.html'), 'utf8');
    expect(html).toContain('<h2>Dataset composition (Table 3)</h2>');
    expect(html).toMatch(/<svg[^>]*>.*Held-out accuracy/s);
    const report = JSON.parse(readFileSync(path.join(reportDir, 'report.json'), 'utf8'));
    expect(report.composition.map((c: { iteration: number }) => c.iteration)).toEqual([1, 2]);
    expect(report.composition[1].byRole.injected).toBe(12);
    const list = await cli('loop', 'list');
    expect(list.stdout).toMatch(/steered\s+completed\s+2/);

    // Replay every run of the loop and its stage children against today's workflow code: a non-deterministic change
    // to workflows/ fails here.
    const bundle = { code: readFileSync(inject('workflowBundlePath'), 'utf8') };
    const client = f.loops.client;
    let replayed = 0;
    for await (const execution of client.workflow.list({ query: `WorkflowId STARTS_WITH 'loop/steered'` })) {
      const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, execution.workflowId);
      replayed++;
    }
    expect(replayed).toBeGreaterThanOrEqual(2 + 2 * 3);
  });
});
