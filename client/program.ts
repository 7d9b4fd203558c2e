import { Command } from 'commander';

/** A top-level command: how `--help` lists it, and the module that defines it (loaded only when it runs). */
interface CommandEntry {
  name: string;
  /** Arguments as `--help` shows them next to the name. */
  args?: string;
  description: string;
  load: () => Promise<{ register: (program: Command, name: string) => void }>;
}

/**
 * Every `looptool` command. Each family lives in its own module under client/commands/ and is imported only when that
 * command runs (or its help is asked for), so `looptool --help` loads commander and this table, nothing else.
 */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'services',
    description: 'Start, stop or inspect the embedded Temporal server and PostgreSQL',
    load: () => import('./commands/services.js'),
  },
  {
    name: 'demo',
    args: '[options]',
    description:
      'Run a complete LoopTool loop on the embedded default (embedded Temporal + PostgreSQL, simulated models)',
    load: () => import('./commands/demo.js'),
  },
  {
    name: 'data',
    description: 'Import, inspect, compare, trace and export dataset versions',
    load: () => import('./commands/data.js'),
  },
  { name: 'loop', description: 'Start, watch and steer LoopTool loops', load: () => import('./commands/loop.js') },
  {
    name: 'runtime',
    description: 'The real CPU policy server (transformers behind the OpenAI API) and its Python environment',
    load: () => import('./commands/runtime.js'),
  },
  {
    name: 'inject',
    args: '[options] <loop> <file>',
    description: "Import a file and merge it into the loop's next dataset (role injected), once",
    load: () => import('./commands/loop.js'),
  },
  {
    name: 'worker',
    description: 'Run a worker (task queues, database and model servers from the environment; see .env.example)',
    load: () => import('./commands/worker.js'),
  },
  {
    name: 'score',
    args: '[options]',
    description: 'Score BFCL predictions with the BFCL-exact AST checker and print per-category accuracy',
    load: () => import('./commands/score.js'),
  },
  {
    name: 'sim',
    description: 'The simulated model stack (vLLM-compatible server, trainer) and its seed data',
    load: () => import('./commands/sim.js'),
  },
  {
    name: 'reward',
    description: 'Serve the GRPO training reward over HTTP, scored by the looptool checker (for verl and TRL)',
    load: () => import('./commands/reward.js'),
  },
];

/** The command `argv` runs (`looptool help <name>` asks for that command too), if it names one. */
function commandNamed(argv: readonly string[]): string | undefined {
  const words = argv.slice(2).filter((word) => !word.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * Builds the `looptool` command tree for `argv`: the command it runs is defined in full (its module loaded), every
 * other one only by its name and description for `--help`.
 */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('looptool')
    .description('Run the LoopTool closed data-training loop as a durable Temporal workflow')
    .showHelpAfterError();
  const wanted = commandNamed(argv);
  for (const entry of COMMANDS) {
    if (entry.name === wanted) {
      (await entry.load()).register(program, entry.name);
    } else {
      program.command(entry.args ? `${entry.name} ${entry.args}` : entry.name).description(entry.description);
    }
  }
  return program;
}
