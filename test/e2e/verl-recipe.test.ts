import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { z } from 'zod';
import { Grpo, LoraConfig } from '../../core/config.js';
import { CheckpointManifest, TrainingJobSpec } from '../../core/training.js';
import { projectPath } from '../../services/paths.js';
import { ensurePythonEnv, type PythonEnv } from '../../services/python-env.js';

// recipes/verl-grpo against the verl it pins (recipes/requirements/verl.txt), on CPU: verl composes its own Hydra
// config with the recipe's overrides and runs the validation main_ppo runs before it starts; verl's own checkpoint
// manager writes FSDP shards and verl's model merger turns them into what the manifest names.
const RECIPE = projectPath('recipes', 'verl-grpo');
const OVERRIDES = path.join(RECIPE, 'overrides.py');
const CHECK_CONFIG = path.join(RECIPE, 'check_config.py');
const FINISH = path.join(RECIPE, 'finish.py');
const SAVE_CHECKPOINT = projectPath('test', 'fixtures', 'verl', 'save_checkpoint.py');
const REWARD_MODULE = projectPath('recipes', 'reward', 'looptool_reward.py');

const scratch = mkdtempSync(path.join(os.tmpdir(), 'verl-recipe-'));
let verl: PythonEnv;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: Record<string, string> = {}): Ran {
  const result = spawnSync(command, args, {
    cwd: scratch,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1', OMP_NUM_THREADS: '1', ...env },
  });
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function ok(ran: Ran, what: string): string {
  if (ran.status !== 0) throw new Error(`${what} exited with ${ran.status}:\n${ran.stderr.slice(-4000)}`);
  return ran.stdout;
}

/** A job spec as the loop writes it: core/config.ts's defaults (the paper's settings) unless the test says otherwise. */
function writeSpec(
  name: string,
  overrides: Omit<Partial<TrainingJobSpec>, 'grpo'> & { grpo?: z.input<typeof Grpo> },
): TrainingJobSpec {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { recursive: true });
  const spec = TrainingJobSpec.parse({
    jobKey: `verl-test-iter-2-${name.replace(/[^a-z0-9-]/gi, '-')}`,
    loopName: 'verl-test',
    iteration: 2,
    seed: 7,
    dataset: { path: path.join(dir, 'train.parquet'), format: 'verl-parquet', rows: 18_304 },
    baseModel: 'Qwen/Qwen3-8B',
    init: null,
    weights: 'full',
    lora: LoraConfig.parse({}),
    reward: { mode: 'exact' },
    outputDir: path.join(dir, 'output'),
    ...overrides,
    grpo: Grpo.parse(overrides.grpo ?? {}),
  });
  writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec, null, 2));
  return spec;
}

const specFile = (spec: TrainingJobSpec) => path.join(path.dirname(spec.outputDir), 'spec.json');

function overridesFor(spec: TrainingJobSpec, env: Record<string, string>): string[] {
  return ok(run('python3', [OVERRIDES, specFile(spec)], env), 'overrides.py')
    .trim()
    .split('\n');
}

interface Checked {
  file: string;
  ok: boolean;
  error?: string;
  loraRankCheckedWithoutVllm: boolean;
  // The composed config as verl resolved it.
  config: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** verl's own composition and validation of each override list, in one Python start-up. */
function checkWithVerl(sets: Record<string, string[]>): Record<string, Checked> {
  const files = Object.entries(sets).map(([name, lines]) => {
    const file = path.join(scratch, `${name}.overrides`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  });
  const ran = run(verl.python, [CHECK_CONFIG, ...files]);
  const results = ran.stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Checked);
  expect(results.map((r) => r.file)).toEqual(files);
  return Object.fromEntries(Object.keys(sets).map((name, i) => [name, results[i]!]));
}

const withoutLine = (lines: string[], key: string) => lines.filter((line) => !line.startsWith(`${key}=`));
const replaced = (lines: string[], key: string, value: string) =>
  lines.map((line) => (line.startsWith(`${key}=`) ? `${key}=${value}` : line));

beforeAll(() => {
  // First use installs the pinned venv under .tools/ (about two minutes on two busy cores); later runs reuse it.
  verl = ensurePythonEnv('verl', { log: (line) => console.log(line) });
}, 600_000);

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('recipes/verl-grpo against verl 0.9.1', () => {
  test("the overrides carry the spec's settings and pass verl's own validation; broken ones fail it", () => {
    // Iteration 2 of a full-weight loop (warm start from π_1's HF folder) on 8 GPUs with the paper's settings, and of
    // a LoRA loop (warm start from π_1's adapter) with a KL loss and a step cap on 4 GPUs.
    const fullInit = CheckpointManifest.parse({
      kind: 'full',
      path: path.join(scratch, 'iter-1', 'hf'),
      baseModel: 'Qwen/Qwen3-8B',
      steps: 286,
    });
    // In a folder whose name Hydra must take as one quoted string.
    const full = writeSpec("full run's", { init: fullInit });
    const loraInit = CheckpointManifest.parse({
      kind: 'lora',
      path: path.join(scratch, 'iter-1', 'hf', 'lora_adapter'),
      baseModel: 'Qwen/Qwen3-8B',
      steps: 5,
    });
    const lora = writeSpec('lora', {
      init: loraInit,
      weights: 'lora',
      lora: LoraConfig.parse({ rank: 32, alpha: 64, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] }),
      reward: { mode: 'bfcl_ast' },
      grpo: { klCoef: 0.001, maxSteps: 5, trainBatchSize: 64, miniBatchSize: 32, microBatchSizePerDevice: 2 },
    });
    const fullOverrides = overridesFor(full, { GPUS: '8' });
    const loraOverrides = overridesFor(lora, {
      GPUS: '4',
      ROLLOUT_TP: '2',
      LOOPTOOL_REWARD_URL: 'http://127.0.0.1:8765',
    });

    const checked = checkWithVerl({
      full: fullOverrides,
      lora: loraOverrides,
      noMicroBatches: withoutLine(
        withoutLine(fullOverrides, 'actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu'),
        'actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu',
      ),
      // 128 prompts x 16 rollouts = 2048 sequences do not split over 6 GPUs.
      indivisible: replaced(fullOverrides, 'trainer.n_gpus_per_node', '6'),
      // The KL loss needs the reference policy, whose micro-batch size verl then requires.
      noRefMicroBatch: withoutLine(loraOverrides, 'actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu'),
      rankTooHigh: replaced(loraOverrides, 'actor_rollout_ref.model.lora_rank', '1024'),
    });
    expect(checked.full!.error).toBeUndefined();
    expect(checked.lora!.error).toBeUndefined();
    expect([checked.full!.ok, checked.lora!.ok]).toEqual([true, true]);
    expect(checked.noMicroBatches!.error).toMatch(/ppo_micro_batch_size_per_gpu/);
    expect(checked.indivisible!.error).toMatch(/real_train_batch_size \(2048\) must be divisible by .*\(6\)/);
    expect(checked.noRefMicroBatch!.error).toMatch(/actor_rollout_ref\.ref.*log_prob_micro_batch_size_per_gpu/);
    expect(checked.rankTooHigh!.error).toMatch(/lora_rank must be less than or equal to 512/);

    const config = checked.full!.config;
    const actor = config.actor_rollout_ref.actor;
    const rollout = config.actor_rollout_ref.rollout;
    const grpo = full.grpo;
    expect(config.algorithm.adv_estimator).toBe('grpo');
    expect(actor.optim.lr).toBe(grpo.learningRate);
    expect([actor.clip_ratio_low, actor.clip_ratio_high]).toEqual([grpo.clipLow, grpo.clipHigh]);
    expect([actor.use_kl_loss, config.algorithm.use_kl_in_reward, actor.entropy_coeff]).toEqual([false, false, 0]);
    expect([rollout.n, rollout.temperature, rollout.name]).toEqual([grpo.groupSize, grpo.rolloutTemperature, 'vllm']);
    expect([config.data.max_prompt_length, config.data.max_response_length]).toEqual([
      grpo.maxPromptTokens,
      grpo.maxResponseTokens,
    ]);
    expect([config.data.train_batch_size, actor.ppo_mini_batch_size]).toEqual([
      grpo.trainBatchSize,
      grpo.trainBatchSize,
    ]);
    expect([
      actor.ppo_micro_batch_size_per_gpu,
      rollout.log_prob_micro_batch_size_per_gpu,
      config.actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu,
    ]).toEqual([grpo.microBatchSizePerDevice, grpo.microBatchSizePerDevice, grpo.microBatchSizePerDevice]);
    expect(config.trainer.total_epochs).toBe(grpo.epochs);
    expect(config.trainer.total_training_steps).toBeNull();
    expect(config.data.train_files).toBe(full.dataset.path);
    expect([config.data.seed, rollout.seed, actor.data_loader_seed]).toEqual([7, 7, 7]);
    // Warm start from π_1's weights in a folder of its own: a fresh optimizer, resumable only within this job.
    expect(config.actor_rollout_ref.model.path).toBe(fullInit.path);
    expect(config.actor_rollout_ref.model.lora_rank).toBe(0);
    expect(config.trainer.save_freq).toBeGreaterThan(0);
    expect(config.trainer.default_local_dir).toBe(path.join(full.outputDir, 'verl'));
    expect(config.trainer.resume_mode).toBe('auto');
    expect([config.trainer.n_gpus_per_node, config.trainer.nnodes]).toEqual([8, 1]);
    expect(config.reward.custom_reward_function).toEqual({ path: REWARD_MODULE, name: 'compute_score' });
    expect(config.reward.reward_manager.name).toBe('naive');
    expect(existsSync(REWARD_MODULE)).toBe(true);
    expect(config.ray_kwargs.ray_init.runtime_env.env_vars).toEqual({
      VERL_FILE_LOGGER_PATH: path.join(full.outputDir, 'metrics.jsonl'),
      LOOPTOOL_REWARD_MODE: 'exact',
    });

    const loraConfig = checked.lora!.config;
    const model = loraConfig.actor_rollout_ref.model;
    expect(model.path).toBe(lora.baseModel);
    expect(model.lora_adapter_path).toBe(loraInit.path);
    expect([model.lora_rank, model.lora_alpha, model.target_modules]).toEqual([32, 64, lora.lora.targetModules]);
    expect(loraConfig.actor_rollout_ref.rollout.load_format).toBe('safetensors');
    expect(loraConfig.actor_rollout_ref.rollout.tensor_model_parallel_size).toBe(2);
    expect(loraConfig.actor_rollout_ref.actor.ppo_mini_batch_size).toBe(32);
    expect([loraConfig.actor_rollout_ref.actor.use_kl_loss, loraConfig.actor_rollout_ref.actor.kl_loss_coef]).toEqual([
      true,
      0.001,
    ]);
    expect(loraConfig.trainer.total_training_steps).toBe(5);
    expect(loraConfig.ray_kwargs.ray_init.runtime_env.env_vars).toMatchObject({
      LOOPTOOL_REWARD_URL: 'http://127.0.0.1:8765',
      LOOPTOOL_REWARD_MODE: 'bfcl_ast',
    });
    // Without vLLM here, verl's LoRA rank check ran from verl's own source (check_config.py says so).
    expect(checked.lora!.loraRankCheckedWithoutVllm).toBe(true);

    // verl's real entry point takes the same argv (Hydra's --cfg job prints the config instead of training).
    const printed = ok(
      run(verl.python, ['-m', 'verl.trainer.main_ppo', ...fullOverrides, '--cfg', 'job']),
      'verl.trainer.main_ppo --cfg job',
    );
    expect(printed).toContain(`default_local_dir: ${path.join(full.outputDir, 'verl')}`);
  });

  test('finish.py merges the newest saved step into HF weights or a LoRA adapter and writes the manifest', () => {
    const full = writeSpec('finish-full', { baseModel: '/models/tiny-llama' });
    // Two mini-batches per batch: each verl step is two optimizer steps.
    const lora = writeSpec('finish-lora', {
      baseModel: '/models/tiny-llama',
      weights: 'lora',
      grpo: { trainBatchSize: 128, miniBatchSize: 64 },
    });
    // Nothing saved yet: the recipe must say so, not write a manifest.
    const none = run(verl.python, [FINISH, specFile(full)]);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/verl saved no checkpoint: .*latest_checkpointed_iteration\.txt is missing/);
    expect(existsSync(path.join(full.outputDir, 'checkpoint.json'))).toBe(false);

    ok(
      run(verl.python, [SAVE_CHECKPOINT, '--step', '3', `full:${full.outputDir}`, `lora:${lora.outputDir}`]),
      'save_checkpoint.py',
    );
    ok(run(verl.python, [FINISH, specFile(full)]), 'finish.py (full)');
    ok(run(verl.python, [FINISH, specFile(lora)]), 'finish.py (lora)');

    const fullManifest = CheckpointManifest.parse(
      JSON.parse(readFileSync(path.join(full.outputDir, 'checkpoint.json'), 'utf8')),
    );
    expect(fullManifest).toMatchObject({
      kind: 'full',
      path: path.join(full.outputDir, 'hf'),
      baseModel: '/models/tiny-llama',
      steps: 3,
    });
    expect(fullManifest.metrics.reward).toBe(0.75);
    expect(fullManifest.metrics.pgLoss).toEqual(expect.any(Number));
    const loraManifest = CheckpointManifest.parse(
      JSON.parse(readFileSync(path.join(lora.outputDir, 'checkpoint.json'), 'utf8')),
    );
    expect(loraManifest).toMatchObject({
      kind: 'lora',
      path: path.join(lora.outputDir, 'hf', 'lora_adapter'),
      baseModel: '/models/tiny-llama',
      steps: 6,
    });

    // What the manifests name loads as a model and as an adapter on it (the HF folder verl's merger wrote holds the
    // base weights), the way a server loads them.
    const load = [
      'import sys, json',
      'from transformers import AutoModelForCausalLM',
      'from peft import PeftModel',
      'full = AutoModelForCausalLM.from_pretrained(sys.argv[1])',
      'base = AutoModelForCausalLM.from_pretrained(sys.argv[2])',
      'adapted = PeftModel.from_pretrained(base, sys.argv[3])',
      'lora_params = sum(p.numel() for n, p in adapted.named_parameters() if "lora_" in n)',
      'print(json.dumps({"full": type(full).__name__, "loraParams": lora_params, "r": adapted.peft_config["default"].r}))',
    ].join('\n');
    const loaded = JSON.parse(
      ok(
        run(verl.python, ['-c', load, fullManifest.path, path.dirname(loraManifest.path), loraManifest.path]),
        'loading the merged checkpoints',
      )
        .trim()
        .split('\n')
        .at(-1)!,
    );
    expect(loaded).toMatchObject({ full: 'LlamaForCausalLM', r: 8 });
    expect(loaded.loraParams).toBeGreaterThan(0);

    // The next iteration warm-starts from exactly what the manifest names.
    const next = writeSpec('finish-next', { baseModel: '/models/tiny-llama', weights: 'lora', init: loraManifest });
    expect(overridesFor(next, {})).toContain(`actor_rollout_ref.model.lora_adapter_path='${loraManifest.path}'`);
  });
});
