import { describe, expect, inject, test } from 'vitest';
import { renderFaultTable, runChaos } from '../chaos/driver.js';
import { PROFILES } from '../chaos/plan.js';

/**
 * `npm run chaos -- --short` in CI: the chaos driver (test/chaos/driver.ts) runs a reference loop and the same loop
 * under the short seeded fault plan (5 worker kills, a Temporal crash, a 30 s PostgreSQL stop, the trainer API away for
 * 30 s, the sim servers answering 429, 500, cut-off and HTML bodies) on its own Temporal dev server and PostgreSQL, so
 * stopping them disturbs no other test. Everything asserted is rows, counters and history events. The full form
 * (`npm run chaos`: 20 kills, 3 restarts, a 6-minute PostgreSQL outage, requests that never answer) is not run here.
 */
describe('chaos, short form', () => {
  // Two loops of three iterations, six worker start-ups, and two 30 s outages, on 2 cores.
  test(
    'the loop completes through every fault with the rows of an undisturbed run, none duplicated',
    { timeout: 600_000 },
    async () => {
      const lines: string[] = [];
      const report = await runChaos({
        profile: PROFILES.short,
        seed: 7,
        temporalCliPath: inject('temporalCliPath'),
        log: (line) => lines.push(line),
        // A guard against a loop that never ends: the report then says where it stood.
        deadlineMs: 480_000,
      });
      console.log(`${lines.join('\n')}\n\n${renderFaultTable(report)}`);
      const context = `${lines.slice(-40).join('\n')}\n${report.problems.join('\n')}\n${report.differences.join('\n')}`;

      expect(report.chaosStatus, context).toBe('COMPLETED');
      expect(report.differences, context).toEqual([]);
      expect(report.duplicates, context).toEqual([]);
      expect(report.problems, context).toEqual([]);
      // Every planned fault was injected, and the loop went on after each.
      expect(report.faults.every((fault) => fault.injected && fault.recovered)).toBe(true);
      const count = (kind: string) => report.summary.find((row) => row.kind === kind)?.count;
      expect(count('worker_kill')).toBe(PROFILES.short.workerKills);
      expect(count('temporal_restart')).toBe(PROFILES.short.temporalRestarts);
      expect(count('postgres_stop')).toBe(PROFILES.short.postgresStops.length);
      expect(count('trainer_away')).toBe(1);
      // The sim servers answered with each fault kind as often as the plan asked.
      for (const row of report.summary.filter((r) => r.kind.startsWith('sim_')))
        expect(row.recovered, row.note).toBe(true);
      // One trainer job per iteration, however often training was retried; the kills cost retried attempts.
      expect(Object.values(report.trainerJobs)).toEqual([1, 1, 1]);
      expect(report.history.retriedAttempts).toBeGreaterThan(0);
      expect(report.rows.chaos).toEqual(report.rows.reference);
    },
  );
});
