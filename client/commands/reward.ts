import { renameSync, writeFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { LoopConfig } from '../../core/config.js';
import { REWARD_HEALTH_PATH, REWARD_SCORE_PATH } from '../../core/reward.js';
import { RewardMode } from '../../core/vocabulary.js';
import { startRewardServer } from '../../services/reward-server.js';
import { integerOption } from '../options.js';

const port = integerOption(0, 65535);

function rewardMode(value: string): RewardMode {
  const parsed = RewardMode.safeParse(value);
  if (!parsed.success) throw new InvalidArgumentError(`expected one of ${RewardMode.options.join(', ')}`);
  return parsed.data;
}

/** The loop config's default reward, so a bare `reward serve` scores as a loop with no `reward:` setting does. */
const DEFAULT_MODE: RewardMode = LoopConfig.shape.reward.parse(undefined);

interface ServeOptions {
  mode: RewardMode;
  host: string;
  port: number;
  readyFile?: string;
}

/**
 * `looptool reward serve`: the training reward over HTTP, core/checker's verdict for every (completion, label) a
 * trainer sends. `recipes/reward/with-reward-server.sh` starts one per training job and waits for its ready file.
 */
export function register(program: Command): void {
  const reward = program
    .command('reward')
    .description('Serve the GRPO training reward over HTTP, scored by the looptool checker (for verl and TRL)');

  reward
    .command('serve')
    .description('Serve POST /v1/score (batches of completions and labels) until SIGINT/SIGTERM')
    .option(
      '--mode <mode>',
      `reward mode of batches that name none (${RewardMode.options.join(', ')})`,
      rewardMode,
      DEFAULT_MODE,
    )
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 picks a free one)', port, 0)
    .option('--ready-file <path>', 'write the URL to this file once listening (for scripts that wait on it)')
    .action(async (options: ServeOptions) => {
      const server = await startRewardServer({ mode: options.mode, host: options.host, port: options.port });
      if (options.readyFile) {
        // Written whole, then renamed: a script polling for the file never reads half a URL.
        const partial = `${options.readyFile}.${process.pid}.tmp`;
        writeFileSync(partial, `${server.url}\n`);
        renameSync(partial, options.readyFile);
      }
      console.log(
        `Reward server: ${server.url} (mode ${server.mode}; POST ${REWARD_SCORE_PATH}, GET ${REWARD_HEALTH_PATH})`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await server.close();
      console.log('Reward server stopped.');
    });
}
