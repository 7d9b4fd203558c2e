import { ConfigError } from './config.js';
import { runWorkerProcess } from './run.js';

runWorkerProcess().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
