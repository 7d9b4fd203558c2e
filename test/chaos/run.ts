/**
 * `npm run chaos [-- --short | --profile outage] [--seed N] [--samples N] [--keep]`: the chaos driver (test/chaos/driver.ts) from the
 * command line. Runs a reference loop and the same loop under a seeded fault plan on its own throwaway Temporal dev
 * server and PostgreSQL, prints where each fault landed, the table of faults injected and recovered, and any
 * difference from the reference; exits 1 when the loop did not complete, a row differs or is duplicated, or a fault
 * was not recovered. The full profile (20 worker kills, 3 Temporal restarts, 3 PostgreSQL stops of which one lasts 6
 * minutes, the trainer away for 3 minutes, sim faults) takes about half an hour on 2 cores; `--short` is the CI one
 * (test/e2e/chaos-short.test.ts).
 */
import { parseArgs } from 'node:util';
import { type ChaosReport, renderFaultTable, runChaos } from './driver.js';
import { describeMilestone, PROFILES } from './plan.js';

const { values } = parseArgs({
  options: {
    short: { type: 'boolean', default: false },
    /** `outage`: only a 10-minute PostgreSQL stop and a 10-minute trainer outage. */
    profile: { type: 'string' },
    seed: { type: 'string', default: '7' },
    samples: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

const seed = Number.parseInt(values.seed, 10);
if (!Number.isInteger(seed)) throw new Error(`--seed must be an integer, not ${values.seed}`);
const named = values.profile ?? (values.short ? 'short' : 'full');
if (!(named in PROFILES)) throw new Error(`--profile must be one of ${Object.keys(PROFILES).join(', ')}, not ${named}`);
const profile = PROFILES[named as keyof typeof PROFILES];

const abort = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    // The driver stops its servers and workers before it returns; a second signal ends at once.
    if (abort.signal.aborted) process.exit(130);
    console.error(`\n${signal}: stopping the servers and workers…`);
    abort.abort(new Error(`interrupted by ${signal}`));
  });
}

function print(report: ChaosReport): void {
  console.log('\nFaults, where they landed:');
  for (const fault of report.faults) {
    console.log(
      `  #${String(fault.id).padStart(2)} ${fault.kind.padEnd(16)} planned ${describeMilestone(fault.at).padEnd(22)} ` +
        `landed ${(fault.landed ?? 'never').padEnd(28)}${fault.downMs !== undefined ? ` away ${(fault.downMs / 1000).toFixed(1)} s` : ''}` +
        `${fault.waitingFor.length > 0 ? ` · loop waited for: ${fault.waitingFor.join('; ').slice(0, 160)}` : ''}`,
    );
  }
  console.log(`\n${renderFaultTable(report)}\n`);
  console.log(
    `Worker: ${report.workerStarts} starts, ${report.workerCrashes.length} exits by itself` +
      (report.workerCrashes.length > 0
        ? ` (${report.workerCrashes
            .map((c) => c.tail)
            .join(' || ')
            .slice(0, 400)})`
        : ''),
  );
  console.log(
    `Histories: ${report.history.retriedAttempts} retried attempts, ${report.history.activityFailures} activity failures, ` +
      `${report.history.activityTimeouts} activity timeouts, ${report.history.workflowTaskFailures} workflow task failures`,
  );
  console.log(`Trainer jobs per key: ${JSON.stringify(report.trainerJobs)}`);
  console.log(`Rows (chaos run): ${JSON.stringify(report.rows.chaos)}`);
  console.log(
    `Reference loop ${(report.referenceMs / 1000).toFixed(0)} s; chaos loop ${(report.chaosMs / 1000).toFixed(0)} s, ${report.chaosStatus}` +
      (report.chaosFailure ? `: ${report.chaosFailure}` : ''),
  );
  for (const problem of report.problems) console.log(`PROBLEM: ${problem}`);
  if (report.duplicates.length > 0) console.log(`DUPLICATES:\n  ${report.duplicates.join('\n  ')}`);
  if (report.differences.length > 0) console.log(`DIFFERENCES from the reference:\n${report.differences.join('\n')}`);
  console.log(
    report.ok
      ? `PASS: the ${report.profile} chaos run (seed ${report.seed}, ${report.samples} samples) matches the reference.`
      : `FAIL: the ${report.profile} chaos run (seed ${report.seed}) ${report.chaosStatus === 'COMPLETED' ? 'differs from the reference' : 'did not complete'}.`,
  );
}

try {
  const report = await runChaos({
    profile,
    seed,
    ...(values.samples ? { samples: Number.parseInt(values.samples, 10) } : {}),
    keep: values.keep,
    signal: abort.signal,
  });
  print(report);
  process.exitCode = report.ok ? 0 : 1;
} catch (err) {
  console.error(`chaos run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
}
