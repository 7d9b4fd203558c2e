import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Command, Option } from 'commander';
import { formatRejection } from '../../core/formats/rejection.js';
import { formatPercent, iterationTable, trainingTable } from '../../core/iteration-table.js';
import type { TrainingProgress } from '../../core/training.js';
import type { LoopStatus } from '../../core/messages.js';
import { ImportFormat } from '../../core/vocabulary.js';
import { formatTable } from '../format.js';
import { LoopClient } from '../loop-client.js';
import { nameOption } from '../options.js';
import { printable } from '../printable.js';
import { cliSettings } from '../settings.js';

// The database, the config reader and the report load only in the subcommands that use them, so `loop status`, the
// one people run in a watch loop, loads the Temporal client and little else.
const database = () => import('../database.js');

async function withLoops<T>(fn: (loops: LoopClient) => Promise<T>): Promise<T> {
  const { temporal } = cliSettings();
  const loops = await LoopClient.connect(temporal.address, temporal.namespace);
  try {
    return await fn(loops);
  } finally {
    await loops.close();
  }
}

function bar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

/** The status as a person reads it: where the loop is, the running stage's progress, the metrics history. */
export function renderStatus(
  status: LoopStatus & {
    workflowStatus: string;
    running?: { done: number; total: number; counts: Record<string, number> };
    training?: TrainingProgress;
  },
): string {
  const lines = [
    `loop ${status.loopName}: ${status.workflowStatus.toLowerCase()}, iteration ${status.iteration}/${status.iterations}, stage ${status.stage}` +
      `${status.paused ? ' (PAUSED)' : ''}${status.stopAfterIteration ? ' (stopping after this iteration)' : ''}`,
  ];
  if (status.running) {
    const counts = Object.entries(status.running.counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(
      `  ${status.stage.padEnd(8)} ${bar(status.running.done, status.running.total)} batches${counts ? `  ${counts}` : ''}`,
    );
  }
  if (status.training) lines.push(...trainingLines(status.training));
  for (const waiting of status.waiting ?? [])
    lines.push(
      `  WAITING since ${waiting.since} (${waiting.rounds} rounds of retries): ${waiting.what}: ${waiting.reason}`,
    );
  for (const [stage, progress] of Object.entries(status.progress)) {
    if (!progress) continue;
    lines.push(
      `  ${stage.padEnd(8)} done: ${Object.entries(progress.counts)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  }
  const table = iterationTable(status);
  lines.push('', formatTable(table.headers, table.rows));
  const training = trainingTable(status.history);
  if (training.rows.length > 0) lines.push('', formatTable(training.headers, training.rows));
  if (status.pendingInjections.length > 0)
    lines.push(`\n${status.pendingInjections.length} injected batch(es) wait for the next dataset`);
  return lines.join('\n');
}

/** The training job as its activity last reported it: engine, job id, state, step, the last log lines. */
export function trainingLines(training: TrainingProgress): string[] {
  const steps = training.totalSteps > 0 ? `step ${training.step}/${training.totalSteps}` : `step ${training.step}`;
  const unreachable = training.unreachableSince
    ? `, ${training.engine} not answering since ${training.unreachableSince} (${training.lastError ?? 'no answer'})`
    : '';
  return [
    `  train    ${training.engine} job ${training.externalId ?? training.jobKey}: ${training.status}, ${steps}${unreachable}`,
    ...(training.logsTail ?? []).slice(-3).map((line) => `           | ${line.slice(0, 160)}`),
  ];
}

/** `looptool loop …` and `looptool inject`. */
export function register(program: Command, name: string): void {
  if (name === 'inject') registerInject(program);
  else registerLoop(program);
}

function registerLoop(program: Command): void {
  const loop = program.command('loop').description('Start, watch and steer LoopTool loops');

  loop
    .command('start')
    .description('Start a loop from a config file (idempotent: an existing loop is reported, not restarted)')
    .requiredOption('--config <file>', 'loop config, YAML or JSON')
    .option('--name <loop>', 'loop name (overrides the config)', nameOption('loop'))
    .action(async (options: { config: string; name?: string }) => {
      const { loadLoopConfig } = await import('../config-file.js');
      const { config, configHash } = loadLoopConfig(options.config, options.name ? { name: options.name } : {});
      const loopName = config.name;
      if (!loopName) throw new Error(`${options.config}: give the loop a name (name: in the config, or --name)`);
      // A missing seed dataset would pass here and fail the loop's first activity a second later: refuse it now,
      // before anything starts, saying how to import it.
      const { withCliDatabase, seedDatasetProblem } = await database();
      const problem = await withCliDatabase((pool) => seedDatasetProblem(pool, config.data.seedDataset));
      if (problem) throw new Error(`${options.config}: data.seedDataset: ${problem}`);
      await withLoops(async (loops) => {
        const started = await loops.start({ loopName, config, configHash, queues: cliSettings().queues });
        if (started.started)
          console.log(`Started loop ${loopName} (workflow ${started.workflowId}, config ${configHash.slice(0, 12)}).`);
        else
          console.log(
            `Loop ${loopName} already exists (workflow ${started.workflowId}, ${started.status?.toLowerCase()}); not started again.`,
          );
      });
    });

  loop
    .command('status <loop>')
    .description('Where the loop is, with progress and per-iteration metrics')
    .option('--watch', 'refresh every 2 seconds until the loop ends')
    .option('--json', 'print as JSON')
    .action(async (name: string, options: { watch?: boolean; json?: boolean }) => {
      await withLoops(async (loops) => {
        for (;;) {
          const status = await loops.status(name);
          const ending = status.workflowStatus === 'RUNNING' ? undefined : await loops.ending(name);
          if (options.json) console.log(JSON.stringify({ ...status, ...(ending ? { ending } : {}) }, null, 2));
          else {
            if (options.watch && process.stdout.isTTY) process.stdout.write('\x1b[2J\x1b[H');
            console.log(renderStatus(status));
            if (ending)
              console.log(
                `\nThe loop ${ending.status.toLowerCase().replace('_', ' ')}: ${ending.cause}\n\`looptool loop resume ${name}\` continues it from its last completed stage.`,
              );
          }
          if (!options.watch || status.workflowStatus !== 'RUNNING') return;
          await sleep(2_000);
        }
      });
    });

  for (const [command, description, action] of [
    [
      'pause',
      'Hold new batches, training jobs and deployments; in-flight work finishes',
      (l: LoopClient, n: string) => l.pause(n),
    ],
    ['stop', 'Finish the current iteration, then end the loop', (l: LoopClient, n: string) => l.stopAfterIteration(n)],
  ] as const) {
    loop
      .command(`${command} <loop>`)
      .description(description)
      .action(async (name: string) => {
        await withLoops(async (loops) => {
          const status = await action(loops, name);
          console.log(
            `${name}: iteration ${status.iteration}, stage ${status.stage}, ${status.paused ? 'paused' : 'running'}${status.stopAfterIteration ? ', stopping after this iteration' : ''}`,
          );
        });
      });
  }

  loop
    .command('resume <loop>')
    .description(
      'Continue a paused loop; or continue a loop that failed, was terminated, timed out or was cancelled, from its last completed stage with the same datasets',
    )
    .action(async (name: string) => {
      await withLoops(async (loops) => {
        const ending = await loops.ending(name);
        if (!ending) {
          const status = await loops.resume(name);
          console.log(
            `${name}: iteration ${status.iteration}, stage ${status.stage}, running${status.stopAfterIteration ? ', stopping after this iteration' : ''}`,
          );
          return;
        }
        const resumed = await loops.resumeEnded(name);
        console.log(
          `Resumed loop ${name} at iteration ${resumed.iteration} (new run ${resumed.runId}); its last run had ${ending.status.toLowerCase().replace('_', ' ')}: ${ending.cause}`,
        );
      });
    });

  loop
    .command('terminate <loop>')
    .description(
      'End a running loop at once, with a reason (its training job keeps running: `loop resume` re-attaches to it)',
    )
    .requiredOption('--reason <text>', 'why; recorded in the loop history and shown by `loop status` and `loop list`')
    .action(async (name: string, options: { reason: string }) => {
      await withLoops(async (loops) => {
        await loops.terminate(name, options.reason);
        console.log(`Terminated loop ${name}: ${options.reason}. \`looptool loop resume ${name}\` continues it.`);
      });
    });

  loop
    .command('list')
    .description('Loops on the server, newest first')
    .action(async () => {
      await withLoops(async (loops) => {
        const list = await loops.list();
        if (list.length === 0)
          return console.log('No loops yet. Start one with `looptool loop start --config <file>`.');
        console.log(
          formatTable(
            ['loop', 'status', 'iteration', 'stage', 'accuracy', 'started', 'waiting for / cause'],
            list.map((l) => [
              l.loopName,
              l.status.toLowerCase(),
              l.iteration ?? '',
              l.stage ?? '',
              formatPercent(l.accuracy),
              l.startTime.toISOString().slice(0, 19).replace('T', ' '),
              (l.ending?.cause ?? l.waitingFor ?? '').slice(0, 100),
            ]),
          ),
        );
      });
    });

  loop
    .command('report <loop>')
    .description(
      'Write an HTML report (accuracy, composition, label corrections, expansion yield, tokens and time) with SVG charts and the data as JSON',
    )
    .requiredOption('--out <dir>', 'output folder')
    .action(async (name: string, options: { out: string }) => {
      const { buildLoopReport, writeReport } = await import('../report.js');
      await (
        await database()
      ).withCliDatabase(async (pool) => {
        const report = await buildLoopReport(pool, name);
        if (report.composition.length === 0) throw new Error(`no data for loop ${name} in this database`);
        const written = writeReport(report, options.out);
        console.log(`Report for ${name}: ${written.html}`);
        if (written.pngs.length > 0) console.log(`PNG charts: ${written.pngs.map((p) => path.basename(p)).join(', ')}`);
        if (written.pngNote) console.log(`PNG charts skipped: ${written.pngNote}`);
      });
    });
}

function registerInject(program: Command): void {
  program
    .command('inject')
    // The loop's name is checked as the arguments are parsed, before the file is read.
    .argument('<loop>', 'the loop to inject into', nameOption('loop'))
    .argument('<file>', 'the file to inject')
    .description("Import a file and merge it into the loop's next dataset (role injected), once")
    .addOption(new Option('--format <format>', 'input format').choices(ImportFormat.options).makeOptionMandatory())
    .option('--answers <file>', 'BFCL possible-answer file (format bfcl)')
    .action(async (name: string, file: string, options: { format: ImportFormat; answers?: string }) => {
      const { DEFAULT_MAX_LINE_CHARS, stageFile } = await import('../../datasets/import.js');
      const { injectionBatchId } = await import('../../datasets/staging.js');
      // The batch id, and so the update's idempotency key, comes from the content and the loop: the same file
      // injected again is the same batch, which the loop merges once.
      const { batchId } = await injectionBatchId({
        loopName: name,
        file,
        format: options.format,
        ...(options.answers ? { answersFile: options.answers } : {}),
      });
      const staged = await (
        await database()
      ).withCliDatabase((pool) =>
        stageFile({
          pool,
          file,
          format: options.format,
          purpose: 'injection',
          target: name,
          batchId,
          maxLineChars: DEFAULT_MAX_LINE_CHARS,
          ...(options.answers ? { answersFile: options.answers } : {}),
        }),
      );
      for (const batch of staged.expired) console.log(`Expired abandoned staging batch ${batch.id}: ${batch.reason}.`);
      if (staged.reused) {
        const earlier = staged.reused;
        const same = `${file} has the same content as batch ${batchId} (${earlier.imported} samples), injected before`;
        if (earlier.status === 'consumed') {
          console.log(`Already injected: ${same} and merged into dataset version id ${earlier.consumedBy}; not again.`);
          return;
        }
        await withLoops(async (loops) => {
          const before = await loops.status(name).catch(() => undefined);
          if (before?.pendingInjections.includes(batchId)) {
            console.log(
              `Already injected: ${same}; it waits for the next dataset and is not queued again (${before.pendingInjections.length} batch(es) waiting).`,
            );
            return;
          }
          // Staged but not waiting: the earlier update may not have reached the loop. Sending it again is safe, since
          // the key is the batch id and a loop takes a key once.
          const status = await loops.inject(name, batchId, batchId);
          console.log(
            `Already staged: ${same}; sent to ${name} again, which merges a batch once (${status.pendingInjections.length} batch(es) waiting).`,
          );
        });
        return;
      }
      for (const rejection of staged.rejections) console.error(printable(formatRejection(rejection)));
      if (staged.staged === 0) {
        console.error(`${file}: nothing to inject (${staged.rejected} rejected)`);
        process.exitCode = 1;
        return;
      }
      await withLoops(async (loops) => {
        const status = await loops.inject(name, staged.batchId, staged.batchId);
        console.log(
          `Injected ${staged.staged} samples (batch ${staged.batchId}) into ${name}; they join the next dataset (${status.pendingInjections.length} batch(es) waiting).`,
        );
      });
      if (staged.rejected > 0) process.exitCode = 1;
    });
}
