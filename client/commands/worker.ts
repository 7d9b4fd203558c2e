import type { Command } from 'commander';

/** `looptool worker`: the worker process, configured by the environment (see .env.example). */
export function register(program: Command): void {
  program
    .command('worker')
    .description('Run a worker (task queues, database and model servers from the environment; see .env.example)')
    .action(async () => {
      const { ConfigError, runWorkerProcess } = await import('../../worker/worker.js');
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
