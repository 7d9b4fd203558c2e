import path from 'node:path';
import type { Command } from 'commander';
import type pg from 'pg';
import { DecontaminationConfig, LoopConfig } from '../../core/config.js';
import type { OverlapSettings } from '../../core/decontam.js';
import { decontaminateVersion, type EvalSetFiles } from '../../datasets/decontam.js';
import { overlappingMembers, type DecontamReport } from '../../db/queries/decontam.js';
import { getLoop } from '../../db/queries/loops.js';
import { getVersion } from '../../db/queries/versions.js';
import { projectPath } from '../../services/paths.js';
import { withCliDatabase } from '../database.js';
import { formatTable } from '../format.js';
import { integerOption, nameOption } from '../options.js';
import { printable } from '../printable.js';

interface DecontamOptions {
  eval: string[];
  config?: string;
  loop?: string;
  ngram?: number;
  minQuestionTokens?: number;
  samples: number;
  json?: boolean;
}

/**
 * `looptool data decontam <version>`: the version's tool-name and n-gram overlap with evaluation sets, named as files
 * (`--eval`, repeatable) or taken with the decontamination settings from a loop config file (`--config`) or a started
 * loop's stored config (`--loop`). Checks are stored per (evaluation index, sample), so asking again is quick and
 * asking about the next version checks only its new samples.
 */
export function registerDecontam(data: Command): void {
  data
    .command('decontam <version>')
    .description(
      "Tool-name and n-gram overlap of a version with evaluation sets (BFCL question files, or a loop config's)",
    )
    .option(
      '--eval <file>',
      'a BFCL question file to check against (repeat for more; each is its own set, named after the file)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--config <file>', 'take the evaluation sets and decontamination settings from this loop config')
    .option('--loop <name>', "take them from this loop's stored config", nameOption('loop'))
    .option('--ngram <n>', 'n-gram length in word tokens (default: the config, else 13)', integerOption(2, 64))
    .option(
      '--min-question-tokens <n>',
      'shorter questions count as one n-gram when at least this long (default: the config, else 8)',
      integerOption(1, 64),
    )
    .option('--samples <n>', 'how many overlapping samples to list', integerOption(0, 100_000), 20)
    .option('--json', 'print as JSON')
    .action(async (ref: string, options: DecontamOptions) => {
      const given = [options.eval.length > 0, options.config !== undefined, options.loop !== undefined].filter(Boolean);
      if (given.length !== 1)
        throw new Error('name the evaluation sets with exactly one of --eval <file> (repeatable), --config or --loop');
      await withCliDatabase(async (pool) => {
        const { sets, settings, resolvePath } = await evaluationSource(pool, options);
        const version = await getVersion(pool, ref);
        const { report, built, checkedNow } = await decontaminateVersion(pool, {
          versionId: version.id,
          sets,
          settings,
          resolvePath,
        });
        const samples =
          options.samples > 0
            ? await overlappingMembers(pool, { versionId: version.id, indexId: report.indexId, limit: options.samples })
            : [];
        const contaminated = settings.toolNames
          ? report.toolNameOverlaps + report.ngramOverlaps - report.bothOverlaps
          : report.ngramOverlaps;
        if (options.json)
          return console.log(
            JSON.stringify({ report, contaminated, countsToolNames: settings.toolNames, checkedNow, samples }, null, 2),
          );
        printReport(report, { questions: built.index.stats.questions, checkedNow, contaminated, settings });
        if (samples.length > 0) {
          console.log(
            `\noverlapping samples${samples.length === options.samples ? ` (the first ${options.samples})` : ''}`,
          );
          console.log(
            formatTable(
              ['sample', 'role', 'tool names', 'questions'],
              samples.map((s) => [
                s.sampleId,
                s.role,
                printable(s.toolNames.join(' ')),
                printable(s.questions.join(' ')),
              ]),
            ),
          );
        }
      });
    });
}

/** The sets to check against and the settings, from the one source the options name. */
async function evaluationSource(
  pool: pg.Pool,
  options: DecontamOptions,
): Promise<{
  sets: EvalSetFiles[];
  settings: OverlapSettings & { toolNames: boolean };
  resolvePath: (p: string) => string;
}> {
  let sets: EvalSetFiles[];
  let configured: DecontaminationConfig;
  // Loop configs name eval files relative to the project root (the worker reads them there); --eval files are the
  // person's, relative to where they are.
  let resolvePath = (p: string) => projectPath(p);
  if (options.config !== undefined) {
    const { loadLoopConfig } = await import('../config-file.js');
    const { config } = loadLoopConfig(options.config);
    ({ sets } = config.evaluation);
    configured = config.decontamination;
    if (sets.length === 0)
      throw new Error(`${options.config}: evaluation.sets is empty: there is nothing to check against`);
  } else if (options.loop !== undefined) {
    const loop = await getLoop(pool, options.loop);
    if (!loop) throw new Error(`no loop ${options.loop} in the database (see \`looptool loop list\`)`);
    // Loops started before decontamination existed have no such section: the schema's defaults fill it in.
    const parsed = LoopConfig.safeParse(loop.config);
    if (!parsed.success)
      throw new Error(`loop ${options.loop}: its stored config no longer parses: ${parsed.error.message}`);
    ({ sets } = parsed.data.evaluation);
    configured = parsed.data.decontamination;
    if (sets.length === 0)
      throw new Error(
        `loop ${options.loop} has no evaluation sets (evaluation.sets): there is nothing to check against`,
      );
  } else {
    sets = options.eval.map((file) => ({
      name: path.basename(file).replace(/\.jsonl?$/, ''),
      files: [{ questions: file }],
    }));
    configured = DecontaminationConfig.parse({});
    resolvePath = (p: string) => path.resolve(p);
  }
  return {
    sets,
    settings: {
      ngram: options.ngram ?? configured.ngram,
      minQuestionTokens: options.minQuestionTokens ?? configured.minQuestionTokens,
      toolNames: configured.toolNames,
    },
    resolvePath,
  };
}

function printReport(
  report: DecontamReport,
  context: {
    questions: number;
    checkedNow: number;
    contaminated: number;
    settings: OverlapSettings & { toolNames: boolean };
  },
): void {
  const { settings } = context;
  console.log(
    `${report.ref} (id ${report.versionId}): ${report.members} samples against ${report.sources.length} evaluation ` +
      `file(s), ${context.questions} questions (${settings.ngram}-grams; whole questions of ${settings.minQuestionTokens}+ ` +
      `tokens; index ${report.indexId}, ${context.checkedNow} samples checked now, the rest before)`,
  );
  console.log(
    formatTable(
      ['overlap', 'samples'],
      [
        ['tool names', report.toolNameOverlaps],
        ['n-grams', report.ngramOverlaps],
        ['both', report.bothOverlaps],
        [`contaminated (${settings.toolNames ? 'either' : 'n-grams only'})`, context.contaminated],
      ],
    ),
  );
  const roles = Object.entries(report.byRole);
  if (roles.length > 1)
    console.log(
      `\nby role\n${formatTable(
        ['role', 'members', 'tool names', 'n-grams'],
        roles.map(([role, r]) => [role, r.members, r.toolName, r.ngram]),
      )}`,
    );
  if (report.topToolNames.length > 0)
    console.log(
      `\nmost shared tool names\n${formatTable(
        ['tool name', 'samples'],
        report.topToolNames.map((t) => [printable(t.name), t.samples]),
      )}`,
    );
  if (report.topQuestions.length > 0)
    console.log(
      `\nmost copied questions\n${formatTable(
        ['question', 'samples'],
        report.topQuestions.map((q) => [printable(q.question), q.samples]),
      )}`,
    );
}
