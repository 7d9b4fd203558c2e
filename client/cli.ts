import { describeError } from './cli-errors.js';
import { buildProgram } from './program.js';

try {
  await (await buildProgram(process.argv)).parseAsync(process.argv);
} catch (err) {
  console.error(describeError(err));
  process.exitCode = 1;
}
