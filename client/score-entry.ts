// `looptool score` on its own, for the bundle bin/looptool.js runs for it (scripts/build.js, BUNDLES): the same
// command definition as in the full program (client/commands/score.ts), without loading the other commands' table.
import { Command } from 'commander';
import { describeError } from './cli-errors.js';
import { register } from './commands/score.js';

// No top-level await: the bundle is CommonJS.
async function main(): Promise<void> {
  try {
    const program = new Command('looptool').showHelpAfterError();
    register(program);
    await program.parseAsync(process.argv);
  } catch (err) {
    console.error(describeError(err));
    process.exitCode = 1;
  }
}
void main();
