import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { Grpo, LoraConfig } from '../../core/config.js';
import { TrainingJobSpec } from '../../core/training.js';
import { projectPath } from '../../services/paths.js';

// The parts of recipes/verl-grpo that need no verl (plain python3): reading the job spec, refusing what verl would
// refuse only after loading models, Hydra quoting, progress. test/e2e/verl-recipe.test.ts checks against verl itself.
const RECIPE = projectPath('recipes', 'verl-grpo');
const scratch = mkdtempSync(path.join(os.tmpdir(), 'verl-recipe-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function run(command: string, args: string[], env: Record<string, string> = {}) {
  const { GPUS: _g, NNODES: _n, ROLLOUT_TP: _t, LOOPTOOL_REWARD_URL: _u, ...inherited } = process.env;
  const result = spawnSync(command, args, {
    cwd: scratch,
    encoding: 'utf8',
    env: { ...inherited, PYTHONDONTWRITEBYTECODE: '1', ...env },
  });
  if (result.error) throw result.error;
  return result;
}

/** A spec as JSON, free to be broken in any field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RawSpec = Record<string, any>;

let specs = 0;
/** A spec file as the loop writes it (core/config.ts defaults), then edited as raw JSON to break it. */
function specFile(edit: (spec: RawSpec) => void = () => {}, dirName = `job-${++specs}`): string {
  const dir = path.join(scratch, dirName);
  mkdirSync(dir, { recursive: true });
  const spec = TrainingJobSpec.parse({
    jobKey: 'unit-iter-1',
    loopName: 'unit',
    iteration: 1,
    seed: 7,
    dataset: { path: path.join(dir, 'train.parquet'), format: 'verl-parquet', rows: 1024 },
    baseModel: 'Qwen/Qwen2.5-0.5B-Instruct',
    init: null,
    weights: 'full',
    lora: LoraConfig.parse({}),
    grpo: Grpo.parse({}),
    reward: { mode: 'exact' },
    outputDir: path.join(dir, 'output'),
  });
  const raw = JSON.parse(JSON.stringify(spec));
  edit(raw);
  const file = path.join(dir, 'spec.json');
  writeFileSync(file, JSON.stringify(raw, null, 2));
  return file;
}

const overrides = (file: string, env: Record<string, string> = {}) =>
  run('python3', [path.join(RECIPE, 'overrides.py'), file], env);

describe('recipes/verl-grpo/overrides.py', () => {
  test('a bad spec or cluster setting is refused with the file, the field and the reason', () => {
    const cases: [string, Record<string, string>, RegExp][] = [
      [
        specFile((s) => (s.grpo.learningRate = -1)),
        {},
        /spec\.json: grpo\.learningRate: expected a positive number, got -1/,
      ],
      [
        specFile((s) => delete s.grpo.microBatchSizePerDevice),
        {},
        /spec\.json: grpo\.microBatchSizePerDevice: missing/,
      ],
      [
        specFile((s) => (s.dataset.format = 'trl-jsonl')),
        {},
        /dataset\.format: the verl recipe reads verl-parquet, got "trl-jsonl"/,
      ],
      [
        specFile((s) => (s.dataset.rows = 100)),
        {},
        /dataset\.rows: 100 rows make no full batch of grpo\.trainBatchSize 128/,
      ],
      [
        specFile((s) => (s.init = { kind: 'lora', path: '/a', baseModel: s.baseModel, steps: 1, metrics: {} })),
        {},
        /init\.kind: a LoRA adapter cannot warm-start full-weight training/,
      ],
      [specFile((s) => (s.lora.targetModules = [])), {}, /lora\.targetModules: expected "all-linear" or a list/],
      // 128 prompts x 16 rollouts do not split over 6 GPUs; verl itself would find out after loading the models.
      [specFile(), { GPUS: '6' }, /2048 sequences per update do not split evenly over 6 GPUs/],
      [specFile(), { GPUS: '8', ROLLOUT_TP: '3' }, /ROLLOUT_TP: 3 does not divide the 8 GPUs/],
      [specFile(), { GPUS: 'eight' }, /environment: GPUS: expected a positive integer, got "eight"/],
    ];
    for (const [file, env, message] of cases) {
      const result = overrides(file, env);
      expect({ status: result.status, stdout: result.stdout }).toEqual({ status: 1, stdout: '' });
      expect(result.stderr).toMatch(message);
    }
    const notJson = path.join(scratch, 'not-json.json');
    writeFileSync(notJson, '{\n  "jobKey": \n');
    expect(overrides(notJson).stderr).toMatch(/not-json\.json:3:1: not JSON/);
    expect(overrides(path.join(scratch, 'missing.json')).stderr).toMatch(/missing\.json: cannot read the job spec/);
  });

  test('values reach Hydra quoted: a path with a space and a quote stays one string', () => {
    const file = specFile(() => {}, "job's folder");
    const result = overrides(file);
    expect(result.stderr).toBe('');
    const lines = result.stdout.trim().split('\n');
    const folder = path.join(scratch, "job's folder");
    expect(lines).toContain(`trainer.default_local_dir='${folder.replaceAll("'", "\\'")}/output/verl'`);
    expect(lines).toContain('actor_rollout_ref.actor.optim.lr=1e-06');
    expect(lines).toContain("trainer.logger=['console','file']");
    // Every key appears once: Hydra refuses a key given twice.
    const keys = lines.map((line) => line.slice(0, line.indexOf('=')));
    expect(new Set(keys).size).toBe(keys.length);
  });
});

describe('recipes/verl-grpo/progress.py', () => {
  test("writes the last step verl's file logger recorded against the planned steps", () => {
    const file = specFile((s) => (s.grpo.maxSteps = 40));
    const output = path.join(path.dirname(file), 'output');
    mkdirSync(output, { recursive: true });
    const lines = [1, 2, 3].map((step) => JSON.stringify({ step, data: { 'critic/score/mean': step / 10 } }));
    // The last line cut short, as a kill mid-write leaves it.
    writeFileSync(path.join(output, 'metrics.jsonl'), `${lines.join('\n')}\n{"step": 4, "da`);
    // A finished process: progress.py writes once and returns.
    const gone = spawnSync('true');
    const result = run('python3', [path.join(RECIPE, 'progress.py'), file, '--while-running', String(gone.pid)]);
    expect(result.status).toBe(0);
    // 1024 rows / 128 per batch x 2 epochs = 16 steps, under maxSteps 40.
    expect(JSON.parse(readFileSync(path.join(output, 'progress.json'), 'utf8'))).toEqual({ step: 3, total_steps: 16 });
  });
});

describe('recipes/verl-grpo/run.sh and scripts/gpu-acceptance.sh', () => {
  test('parse as bash', () => {
    for (const script of [path.join(RECIPE, 'run.sh'), projectPath('scripts', 'gpu-acceptance.sh')]) {
      const result = run('bash', ['-n', script]);
      expect({ script, status: result.status, stderr: result.stderr }).toEqual({ script, status: 0, stderr: '' });
    }
  });

  test('run.sh refuses a bad spec before it starts anything, from any working directory', () => {
    const file = specFile((s) => (s.grpo.epochs = 0));
    const result = run('bash', [path.join(RECIPE, 'run.sh'), path.relative(scratch, file)]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/verl-grpo: .*spec\.json: grpo\.epochs: expected an integer >= 1, got 0/);
    // Nothing ran: no output folder, no reward server.
    expect(existsSync(path.join(path.dirname(file), 'output'))).toBe(false);
    const usage = run('bash', [path.join(RECIPE, 'run.sh')]);
    expect([usage.status, usage.stderr.trim()]).toEqual([2, 'usage: run.sh <spec.json> [extra Hydra overrides...]']);
  });
});
