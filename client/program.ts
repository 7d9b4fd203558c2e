import { Command } from 'commander';
import { registerDataCommand } from './commands/data.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerLoopCommand } from './commands/loop.js';
import { registerScoreCommand } from './commands/score.js';
import { registerServicesCommand } from './commands/services.js';
import { registerWorkerCommand } from './commands/worker.js';
import { registerSimCommand } from './commands/sim.js';

/** Builds the `looptool` command tree; each command family lives in its own module under client/commands/. */
export function buildProgram(): Command {
  const program = new Command('looptool')
    .description('Run the LoopTool closed data-training loop as a durable Temporal workflow')
    .showHelpAfterError();
  registerServicesCommand(program);
  registerDemoCommand(program);
  registerDataCommand(program);
  registerLoopCommand(program);
  registerWorkerCommand(program);
  registerScoreCommand(program);
  registerSimCommand(program);
  return program;
}
