import { ConfigError, runWorkerProcess } from './worker.js';

runWorkerProcess().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
