import { type Command, Option } from 'commander';
import { formatRejection } from '../../core/formats/rejection.js';
import { NAME_RULE } from '../../core/names.js';
import { ExportFormat, ImportFormat, SplitMode, StagingPurpose, StagingStatus } from '../../core/vocabulary.js';
import { exportVersion } from '../../datasets/export.js';
import { DEFAULT_MAX_LINE_CHARS, stageFile, versionFromImport } from '../../datasets/import.js';
import {
  DEFAULT_STAGING_MAX_IDLE_SECONDS,
  type ExpiredBatch,
  expireAbandonedBatches,
  formatDuration,
} from '../../datasets/staging.js';
import { getLineage } from '../../db/queries/origins.js';
import { getSamples, resolveSampleId } from '../../db/queries/samples.js';
import { listStagingBatches } from '../../db/queries/staging.js';
import {
  countByRoleAndOrigin,
  diffVersions,
  getVersion,
  listVersions,
  streamMembers,
} from '../../db/queries/versions.js';
import { withCliDatabase } from '../database.js';
import { registerDecontam } from './data-decontam.js';
import { formatTable } from '../format.js';
import { printable } from '../printable.js';
import { integerOption, nameOption, numberOption, positiveInteger } from '../options.js';

/** `looptool data …`: import, inspect, compare, trace and export dataset versions. */
export function register(program: Command): Command {
  const data = program.command('data').description('Import, inspect, compare, trace and export dataset versions');

  data
    .command('import <file>')
    .description(
      'Import a file as the next version of a dataset (streamed; deduplicated by content; bad lines reported)',
    )
    .addOption(new Option('--format <format>', 'input format').choices(ImportFormat.options).makeOptionMandatory())
    // The name is checked as the options are parsed: before the database is opened or a byte of the file is read.
    .requiredOption('--name <dataset>', `dataset name (${NAME_RULE})`, nameOption('dataset'))
    .option('--answers <file>', 'BFCL possible-answer file (format bfcl)')
    .addOption(
      new Option('--split <mode>', 'chat records: a sample for the last assistant turn, or for each')
        .choices(SplitMode.options)
        .default('last'),
    )
    .option('--max-line-chars <n>', 'reject longer lines unread', positiveInteger, DEFAULT_MAX_LINE_CHARS)
    .option(...EXPIRE_AFTER_OPTION)
    .action(
      async (
        file: string,
        options: {
          format: ImportFormat;
          name: string;
          answers?: string;
          split: 'last' | 'each';
          maxLineChars: number;
          expireAfter: number;
        },
      ) => {
        await withCliDatabase(async (pool) => {
          const staged = await stageFile({
            pool,
            file,
            format: options.format,
            purpose: 'import',
            target: options.name,
            split: options.split,
            maxLineChars: options.maxLineChars,
            maxIdleSeconds: options.expireAfter * 3600,
            ...(options.answers ? { answersFile: options.answers } : {}),
          });
          printExpired(staged.expired);
          const { version, added } = await versionFromImport(pool, {
            dataset: options.name,
            batchId: staged.batchId,
            note: `import of ${file}`,
          });
          console.log(
            `${file}: ${staged.lines} records: ${staged.staged} samples imported, ${staged.duplicates} duplicates, ${staged.rejected} rejected (${staged.newToStore} new to the store)`,
          );
          console.log(
            version
              ? `${version.ref}: ${version.memberCount} samples (${added} new to the dataset)`
              : `${options.name}: unchanged (every sample was already in it)`,
          );
          if (staged.rejected > 0) {
            for (const rejection of staged.rejections) console.error(printable(formatRejection(rejection)));
            if (staged.rejected > staged.rejections.length) {
              console.error(
                `… and ${staged.rejected - staged.rejections.length} more; all are stored in staging_rejections (batch ${staged.batchId})`,
              );
            }
            process.exitCode = 1;
          }
        });
      },
    );

  data
    .command('export <version>')
    .description('Write a version in a training format (streamed)')
    .addOption(new Option('--format <format>', 'output format').choices(ExportFormat.options).makeOptionMandatory())
    .requiredOption('--out <path>', 'output file')
    .action(async (ref: string, options: { format: ExportFormat; out: string }) => {
      await withCliDatabase(async (pool) => {
        const summary = await exportVersion(pool, { ref, format: options.format, out: options.out });
        console.log(`${summary.version}: ${summary.written} samples written to ${options.out}`);
        for (const [reason, n] of Object.entries(summary.skipped)) console.warn(`skipped ${n}: ${reason}`);
      });
    });

  data
    .command('versions')
    .description('List dataset versions')
    .option('--loop <name>', 'only the versions of this loop')
    .option('--dataset <name>', 'only the versions of this dataset')
    .option('--json', 'print as JSON')
    .action(async (options: { loop?: string; dataset?: string; json?: boolean }) => {
      await withCliDatabase(async (pool) => {
        const versions = await listVersions(pool, {
          ...(options.loop ? { loopName: options.loop } : {}),
          ...(options.dataset ? { dataset: options.dataset } : {}),
        });
        if (options.json) return console.log(JSON.stringify(versions, null, 2));
        if (versions.length === 0)
          return console.log('No dataset versions yet. Import one with `looptool data import`.');
        console.log(
          formatTable(
            ['version', 'id', 'parent', 'loop', 'iter', 'status', 'members', 'by role', 'created'],
            versions.map((v) => [
              v.ref,
              v.id,
              v.parentId ?? '',
              v.loopName ?? '',
              v.iteration ?? '',
              v.status,
              v.memberCount ?? '',
              Object.entries(v.countsByRole ?? {})
                .map(([role, n]) => `${role} ${n}`)
                .join(', '),
              v.createdAt.toISOString().slice(0, 19).replace('T', ' '),
            ]),
          ),
        );
      });
    });

  data
    .command('show <version>')
    .description('Counts by role and origin, and a few samples, of one version (dataset@n, dataset, or id)')
    .option('--samples <n>', 'how many samples to print', integerOption(0, 1000), 3)
    .option('--json', 'print as JSON')
    .action(async (ref: string, options: { samples: number; json?: boolean }) => {
      await withCliDatabase(async (pool) => {
        const version = await getVersion(pool, ref);
        const byOrigin = await countByRoleAndOrigin(pool, version.id);
        const shown: string[] = [];
        if (options.samples > 0) {
          for await (const page of streamMembers(pool, version.id, { pageSize: options.samples })) {
            shown.push(...page.map((member) => member.sampleId));
            break;
          }
        }
        const samples = await getSamples(pool, shown);
        if (options.json) {
          return console.log(JSON.stringify({ version, byRoleAndOrigin: byOrigin, samples }, null, 2));
        }
        console.log(
          `${version.ref} (id ${version.id}), ${version.status}${version.parentId ? `, parent id ${version.parentId}` : ''}`,
        );
        if (version.loopName) console.log(`loop ${version.loopName}, iteration ${version.iteration}`);
        if (version.note) console.log(printable(version.note));
        console.log(
          formatTable(
            ['role', 'origin', 'samples'],
            byOrigin.map((r) => [r.role, r.origin ?? 'unknown', r.n]),
          ),
        );
        for (const sample of samples) {
          console.log(`\n${sample.id}`);
          console.log(`  tools:    ${sample.nTools}`);
          console.log(`  messages: ${printable(truncate(sample.messagesJson, 300))}`);
          console.log(`  target:   ${printable(truncate(sample.targetJson, 300))}`);
        }
      });
    });

  data
    .command('diff <from> <to>')
    .description('What changed between two versions: added, removed, relabeled, by role and by origin')
    .option('--json', 'print as JSON')
    .action(async (from: string, to: string, options: { json?: boolean }) => {
      await withCliDatabase(async (pool) => {
        const diff = await diffVersions(pool, from, to);
        if (options.json) return console.log(JSON.stringify(diff, null, 2));
        console.log(`${diff.from} → ${diff.to}`);
        console.log(
          formatTable(
            ['change', 'samples'],
            [
              ['added', diff.added],
              ['removed', diff.removed],
              ['relabeled', diff.relabeled],
              ['role changed', diff.roleChanged],
              ['unchanged', diff.unchanged],
            ],
          ),
        );
        const breakdown = (title: string, counts: Record<string, number>) =>
          Object.keys(counts).length > 0 &&
          console.log(`\n${title}\n${formatTable(['', 'samples'], Object.entries(counts))}`);
        breakdown('added by role', diff.addedByRole);
        breakdown('added by origin', diff.addedByOrigin);
        breakdown('removed by role', diff.removedByRole);
        breakdown('removed by origin', diff.removedByOrigin);
      });
    });

  data
    .command('lineage <sample>')
    .description('Where a sample came from, and what came from it (full id or a unique prefix of 8+ hex digits)')
    .option('--json', 'print as JSON')
    .action(async (sample: string, options: { json?: boolean }) => {
      await withCliDatabase(async (pool) => {
        const sampleId = await resolveSampleId(pool, sample.toLowerCase());
        if (!sampleId) throw new Error(`no single sample matches ${sample}`);
        const lineage = await getLineage(pool, sampleId);
        if (options.json) return console.log(JSON.stringify(lineage, null, 2));
        console.log(sampleId);
        for (const origin of lineage.origins) {
          console.log(
            `  origin: ${origin.kind}${origin.loopName ? ` (loop ${origin.loopName}, iteration ${origin.iteration})` : ''} ${JSON.stringify(origin.detail)}`,
          );
        }
        const edges = (title: string, list: typeof lineage.ancestors, pick: (e: (typeof list)[number]) => string) => {
          console.log(`${title}:${list.length === 0 ? ' none' : ''}`);
          for (const edge of list) {
            console.log(
              `  ${'  '.repeat(edge.depth - 1)}${edge.kind} ${pick(edge)}${edge.iteration ? ` (iteration ${edge.iteration})` : ''}`,
            );
          }
        };
        edges('came from', lineage.ancestors, (e) => `← ${e.parentSampleId}`);
        edges('led to', lineage.descendants, (e) => `→ ${e.sampleId}`);
      });
    });

  data
    .command('staging')
    .description(
      'List staging batches (imports and injections on their way into a version), newest first; expires abandoned ones first',
    )
    .addOption(new Option('--status <status>', 'only batches in this status').choices(StagingStatus.options))
    .addOption(new Option('--purpose <purpose>', 'only imports or only injections').choices(StagingPurpose.options))
    .option('--limit <n>', 'at most this many batches', integerOption(1, 100_000), 50)
    .option(...EXPIRE_AFTER_OPTION)
    .option('--json', 'print as JSON')
    .action(
      async (options: {
        status?: StagingStatus;
        purpose?: StagingPurpose;
        limit: number;
        expireAfter: number;
        json?: boolean;
      }) => {
        await withCliDatabase(async (pool) => {
          const expired = await expireAbandonedBatches(pool, { maxIdleSeconds: options.expireAfter * 3600 });
          const batches = await listStagingBatches(pool, {
            limit: options.limit,
            ...(options.status ? { status: options.status } : {}),
            ...(options.purpose ? { purpose: options.purpose } : {}),
          });
          if (options.json) return console.log(JSON.stringify({ expired, batches }, null, 2));
          printExpired(expired);
          if (batches.length === 0)
            return console.log('No staging batches. `looptool data import` and `looptool inject` make them.');
          console.log(
            formatTable(
              ['id', 'purpose', 'target', 'source', 'format', 'status', 'samples', 'dupes', 'rejected', 'age', 'note'],
              batches.map((b) => [
                b.id,
                b.purpose,
                printable(b.target),
                printable(b.source),
                b.format,
                b.status,
                // A batch's counts are set when it is ready; one that never got there shows what it holds.
                b.status === 'loading' || b.status === 'expired' ? b.members : b.imported,
                b.duplicates,
                b.status === 'loading' || b.status === 'expired' ? b.rejectedLines : b.rejected,
                formatDuration(b.ageSeconds),
                b.status === 'loading'
                  ? `loading by process ${b.loaderPid ?? '?'} on ${b.loaderHost ?? '?'}`
                  : b.status === 'consumed'
                    ? `in version id ${b.consumedBy}`
                    : printable(b.expiryReason ?? ''),
              ]),
            ),
          );
        });
      },
    );

  registerDecontam(data);

  return data;
}

/** `--expire-after <hours>`, shared by the commands that expire abandoned staging batches. */
const EXPIRE_AFTER_OPTION = [
  '--expire-after <hours>',
  'expire a loading staging batch once its import wrote nothing for this long (its process gone on this host: at once)',
  numberOption(0, 100 * 365 * 24),
  DEFAULT_STAGING_MAX_IDLE_SECONDS / 3600,
] as const;

/** Tells the person which abandoned batches were expired, and why. */
function printExpired(expired: readonly ExpiredBatch[]): void {
  for (const batch of expired) console.log(`Expired abandoned staging batch ${batch.id}: ${batch.reason}.`);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
