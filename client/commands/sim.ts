import { InvalidArgumentError, type Command } from 'commander';
import { integerOption as integer, numberOption as number } from '../options.js';
import { writeSeedData } from '../../sim/seed-data.js';
import { startSimServer } from '../../sim/server.js';
import { runSimTrainJob, SIM_TRAIN_DEFAULT_SECONDS, SIM_TRAIN_ENV } from '../../sim/train-job.js';

interface ServeOptions {
  host: string;
  port: number;
  seed: number;
  judgeAccuracy: number;
  validatorAccuracy?: number;
  generatorFlawRate: number;
  trainSeconds: number;
  policyModel: string;
  judgeModel: string;
  generatorModel: string;
  learningScale?: number;
  bfcl: boolean;
  apiKey?: string;
  runtimeLoraUpdating: boolean;
}

interface TrainOptions {
  secondsPerJob?: number;
  failAfterStep?: number;
  hangAfterStep?: number;
  holdFile?: string;
  bfcl: boolean;
}

/** A flag's value, else its environment variable's (parsed by the flag's own parser), else undefined. */
function flagOrEnv<T>(flag: T | undefined, variable: string, parse: (value: string) => T): T | undefined {
  if (flag !== undefined) return flag;
  const raw = process.env[variable];
  if (raw === undefined || raw === '') return undefined;
  try {
    return parse(raw);
  } catch (err) {
    throw new InvalidArgumentError(`${variable}=${raw}: ${(err as Error).message}`);
  }
}

/**
 * `looptool sim serve|seed|train`: the simulated model stack that stands in for vLLM and a GRPO trainer on machines
 * without a GPU, the seed data generator for it, and one simulated training job run in the foreground as a recipe.
 */
export function register(program: Command): void {
  const sim = program
    .command('sim')
    .description('The simulated model stack (vLLM-compatible server, trainer) and its seed data');

  sim
    .command('serve')
    .description('Serve the simulated student, judge, generator and trainer until SIGINT/SIGTERM')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 picks a free one)', integer(0, 65535), 8010)
    .option('--seed <n>', 'seed of every simulated decision', integer(0, 2 ** 31), 7)
    .option('--judge-accuracy <p>', 'chance one judge vote is right', number(0, 1), 0.9)
    .option(
      '--validator-accuracy <p>',
      'chance one validation verdict is right (default: the judge accuracy)',
      number(0, 1),
    )
    .option('--generator-flaw-rate <p>', 'share of generator outputs with a flaw', number(0, 1), 0.1)
    .option('--train-seconds <s>', 'simulated training time per job', number(0, 3600), 1.5)
    .option('--learning-scale <n>', 'sample-epochs per skill that close 63% of the gap to the ceiling', number(1, 1e9))
    .option('--policy-model <name>', 'base policy model name', 'sim-student')
    .option('--judge-model <name>', 'judge model name', 'sim-judge')
    .option('--generator-model <name>', 'generator model name', 'sim-generator')
    .option('--no-bfcl', 'do not load the BFCL oracle from data/bfcl')
    .option('--api-key <key>', "as vLLM's --api-key: every /v1/* request needs this bearer token (/health stays open)")
    .option(
      '--no-runtime-lora-updating',
      'answer the LoRA load/unload routes 404, as vLLM without VLLM_ALLOW_RUNTIME_LORA_UPDATING=True',
    )
    .action(async (options: ServeOptions) => {
      const server = await startSimServer({
        host: options.host,
        port: options.port,
        seed: options.seed,
        judgeAccuracy: options.judgeAccuracy,
        ...(options.validatorAccuracy !== undefined ? { validatorAccuracy: options.validatorAccuracy } : {}),
        generatorFlawRate: options.generatorFlawRate,
        trainer: { jobSeconds: options.trainSeconds },
        ...(options.learningScale !== undefined ? { learning: { learningScale: options.learningScale } } : {}),
        policyModel: options.policyModel,
        judgeModel: options.judgeModel,
        generatorModel: options.generatorModel,
        ...(options.bfcl ? {} : { bfclDir: false as const }),
        ...(options.apiKey ? { apiKey: options.apiKey } : {}),
        runtimeLoraUpdating: options.runtimeLoraUpdating,
      });
      console.log(`Sim server: ${server.url}`);
      console.log(
        `OpenAI base URL: ${server.baseURL} (models ${server.policyModel}, ${server.judgeModel}, ${server.generatorModel})`,
      );
      console.log(`Trainer API:     ${server.trainerURL}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      console.log('Sim server stopped.');
    });

  const seconds = number(0, 3600);
  const step = integer(0, 1_000_000);
  sim
    .command('train')
    .description(
      'Run one simulated training job in the foreground, as a recipe on a training engine: reads the job spec, writes ' +
        "progress.json, the adapter (adapter/) and checkpoint.json into the spec's outputDir",
    )
    .argument('<spec>', 'the job spec (spec.json, core/training.ts) the training backend wrote')
    .option(
      '--seconds-per-job <s>',
      `simulated training time, spread over the steps (env ${SIM_TRAIN_ENV.secondsPerJob}; default ${SIM_TRAIN_DEFAULT_SECONDS})`,
      seconds,
    )
    .option(
      '--fail-after-step <n>',
      `exit 1 after reporting step n, 0 before the first (env ${SIM_TRAIN_ENV.failAfterStep})`,
      step,
    )
    .option(
      '--hang-after-step <n>',
      `stop advancing after reporting step n and never end (env ${SIM_TRAIN_ENV.hangAfterStep})`,
      step,
    )
    .option(
      '--hold-file <path>',
      `after the last step, stay running while this file exists, then finish (env ${SIM_TRAIN_ENV.holdFile})`,
    )
    .option('--no-bfcl', 'do not load the BFCL oracle from data/bfcl (as `sim serve --no-bfcl`)')
    .action(async (specFile: string, options: TrainOptions) => {
      const failAfterStep = flagOrEnv(options.failAfterStep, SIM_TRAIN_ENV.failAfterStep, step);
      const hangAfterStep = flagOrEnv(options.hangAfterStep, SIM_TRAIN_ENV.hangAfterStep, step);
      const holdFile = flagOrEnv(options.holdFile, SIM_TRAIN_ENV.holdFile, (value) => value);
      await runSimTrainJob(specFile, {
        secondsPerJob:
          flagOrEnv(options.secondsPerJob, SIM_TRAIN_ENV.secondsPerJob, seconds) ?? SIM_TRAIN_DEFAULT_SECONDS,
        ...(failAfterStep !== undefined ? { failAfterStep } : {}),
        ...(hangAfterStep !== undefined ? { hangAfterStep } : {}),
        ...(holdFile !== undefined ? { holdFile } : {}),
        ...(options.bfcl ? {} : { bfclDir: false as const }),
      });
    });

  sim
    .command('seed')
    .description('Write seed data over the sim world as OpenAI chat JSONL, with a known share of wrong labels')
    .requiredOption('--out <file>', 'JSONL file to write')
    .option('--count <n>', 'samples', integer(1, 1_000_000), 1500)
    .option('--seed <n>', 'seed', integer(0, 2 ** 31), 7)
    .option('--wrong-label-rate <p>', 'share of samples with a corrupted label', number(0, 1), 0.15)
    .option('--corrupted-out <file>', 'also write the corrupted sample ids ({id, index, corruption} lines)')
    .option('--no-system-prompt', 'leave out the system prompt with the conversation date')
    .action(
      async (options: {
        out: string;
        count: number;
        seed: number;
        wrongLabelRate: number;
        corruptedOut?: string;
        systemPrompt: boolean;
      }) => {
        const summary = await writeSeedData(options.out, {
          count: options.count,
          seed: options.seed,
          wrongLabelRate: options.wrongLabelRate,
          systemPrompt: options.systemPrompt,
          ...(options.corruptedOut ? { corruptedOut: options.corruptedOut } : {}),
        });
        console.log(`Wrote ${summary.written} samples to ${options.out} (${summary.corrupted} with a wrong label).`);
        console.log(
          `By profile: ${Object.entries(summary.byProfile)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}`,
        );
        if (summary.corrupted > 0)
          console.log(
            `Wrong labels: ${Object.entries(summary.byCorruption)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
          );
      },
    );
}
