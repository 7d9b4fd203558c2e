import type { Command } from 'commander';
import type { BfclDecoder } from '../../core/checker/index.js';
import { formatRejection } from '../../core/formats/rejection.js';
import {
  scorePredictions,
  type CategoryScore,
  type ScoreOptions,
  type ScoreOutcome,
  type VerdictLine,
} from '../../datasets/score-predictions.js';

/** Exit code for bad input (a file, a line or an option the user has to fix); 1 stays for unexpected failures. */
export const EXIT_BAD_INPUT = 2;

const DECODERS: readonly BfclDecoder[] = ['auto', 'python', 'hermes', 'json'];
const MAX_REPORTED = 20;

export { scorePredictions, type CategoryScore, type ScoreOptions, type ScoreOutcome, type VerdictLine };

/** The accuracy table: one row per category, then all predictions together. */
export function formatScoreTable(categories: readonly CategoryScore[]): string {
  const rows = [...categories].sort((a, b) => a.category.localeCompare(b.category));
  const all = rows.reduce(
    (sum, row) => ({ category: 'all', correct: sum.correct + row.correct, total: sum.total + row.total }),
    { category: 'all', correct: 0, total: 0 },
  );
  const lines = [...rows, all].map((row) => [
    row.category,
    String(row.correct),
    String(row.total),
    `${((100 * row.correct) / Math.max(1, row.total)).toFixed(2)}%`,
  ]);
  const header = ['category', 'correct', 'total', 'accuracy'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] as string).length)));
  const format = (cells: string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number)))
      .join('  ');
  return [format(header), ...lines.slice(0, -1).map(format), format(lines.at(-1) as string[])].join('\n');
}

/**
 * `looptool score`: BFCL-exact scoring of a predictions file. Exit code 0 when scoring ran, 2 with located messages
 * (`file:line: field: reason`) on bad input.
 */
export function register(program: Command): void {
  program
    .command('score')
    .description('Score BFCL predictions with the BFCL-exact AST checker and print per-category accuracy')
    .requiredOption('--questions <file>', 'BFCL question file (JSONL: id, question, function)')
    .option('--answers <file>', 'BFCL possible-answer file (not needed for irrelevance categories)')
    .requiredOption(
      '--predictions <file>',
      'JSONL of {"id", "result"}: raw model text, [{name: {arg: value}}], or OpenAI tool_calls',
    )
    .option('--category <name>', "BFCL category for every prediction (default: from each id, e.g. 'simple_python')")
    .option('--out <file>', 'write one verdict per prediction: {"id", "valid", "error_type"?, "error"?}')
    .option('--decoder <name>', `how raw text is decoded: ${DECODERS.join(', ')}`, 'auto')
    .option(
      '--threads <n>',
      'threads scoring parts of the predictions file, each reading the questions itself (default 1)',
    )
    .action(async (raw: Omit<ScoreOptions, 'threads'> & { threads?: string }) => {
      const threads = raw.threads === undefined ? undefined : Number(raw.threads);
      if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
        console.error(`--threads: expected a positive whole number, got ${JSON.stringify(raw.threads)}`);
        process.exitCode = EXIT_BAD_INPUT;
        return;
      }
      const options: ScoreOptions = { ...raw, threads };
      if (!DECODERS.includes(options.decoder)) {
        console.error(
          `--decoder: unknown decoder ${JSON.stringify(options.decoder)} (expected one of ${DECODERS.join(', ')})`,
        );
        process.exitCode = EXIT_BAD_INPUT;
        return;
      }
      let outcome: ScoreOutcome;
      try {
        outcome = await scorePredictions(options);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EISDIR' || code === 'EACCES') {
          console.error(`${(err as NodeJS.ErrnoException).path ?? ''}: cannot read: ${code}`);
          process.exitCode = EXIT_BAD_INPUT;
          return;
        }
        throw err;
      }
      if (!outcome.ok) {
        for (const problem of outcome.problems.slice(0, MAX_REPORTED)) console.error(formatRejection(problem));
        if (outcome.problems.length > MAX_REPORTED)
          console.error(`… and ${outcome.problems.length - MAX_REPORTED} more problems`);
        console.error('Nothing was scored: fix the input above and run again.');
        process.exitCode = EXIT_BAD_INPUT;
        return;
      }
      console.log(formatScoreTable(outcome.categories));
      if (outcome.unpredicted > 0)
        console.error(`note: ${outcome.unpredicted} questions have no prediction and were not scored`);
    });
}
