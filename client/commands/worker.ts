import type { Command } from 'commander';
import { ConfigError } from '../../worker/config.js';
import { runWorkerProcess } from '../../worker/run.js';

/** `looptool worker`: the worker process, configured by the environment (see .env.example). */
export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description('Run a worker (task queues, database and model servers from the environment; see .env.example)')
    .action(async () => {
      try {
        await runWorkerProcess();
      } catch (err) {
        if (err instanceof ConfigError) {
          console.error(err.message);
          process.exitCode = 1;
          return;
        }
        throw err;
      }
    });
}
