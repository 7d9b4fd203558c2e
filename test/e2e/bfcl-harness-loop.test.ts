/**
 * A demo-size loop with `evaluation.backend: bfcl-eval` on the simulated stack: BFCL's own harness (`.tools/py-bfcl`)
 * scores the base model and each π_j against the sim server's OpenAI endpoint, non-live, live and multi-turn
 * categories (a few questions each, `maxPerCategory`), and every iteration stores per-category rows and BFCL v3's
 * summary, computed by the published formula (checked here from the stored category rows), shown by `loop status` and
 * the report.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildLoopReport, renderReportHtml } from '../../client/report.js';
import { ensurePythonEnv } from '../../services/python-env.js';
import { runLooptool } from '../helpers/cli.js';
import { createLoopFixture, type LoopFixture } from '../helpers/loop-fixture.js';

const PER_CATEGORY = 3;
const NON_LIVE_PARTS = ['simple_python', 'simple_java', 'simple_javascript'];
const NON_LIVE = ['multiple', 'parallel', 'parallel_multiple'];
const LIVE = ['live_simple', 'live_multiple', 'live_parallel', 'live_parallel_multiple'];
const BESIDE = ['irrelevance', 'live_irrelevance', 'live_relevance'];
const MULTI_TURN = ['multi_turn_base', 'multi_turn_miss_func', 'multi_turn_miss_param', 'multi_turn_long_context'];
const ALL = [...NON_LIVE_PARTS, ...NON_LIVE, ...LIVE, ...BESIDE, ...MULTI_TURN];

let f: LoopFixture;

beforeAll(async () => {
  // First use installs the pinned harness (about 20 s from a warm pip cache); later runs reuse it.
  const env = ensurePythonEnv('bfcl', { log: (line) => console.log(line) });
  const lib = path.join(env.dir, 'lib');
  const python = readdirSync(lib).find((name) => name.startsWith('python'))!;
  // The sim knows BFCL's live and multi-turn questions from the same data the harness asks them from.
  f = await createLoopFixture({ samples: 120, bfclDir: path.join(lib, python, 'site-packages', 'bfcl_eval', 'data') });
  f.startWorker();
}, 600_000);

afterAll(async () => {
  await f?.close();
});

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

describe('a loop evaluated by BFCL’s own harness', () => {
  test('stores per-category rows and the v3 overall per iteration, shown by loop status and the report', async () => {
    const name = `bfcl-harness${f.suffix}`;
    const config = f.config({
      name,
      iterations: 2,
      evaluation: {
        backend: 'bfcl-eval',
        categories: ['non_live', 'live', 'multi_turn'],
        maxPerCategory: PER_CATEGORY,
      },
    });
    await f.start(config);
    const result = await f.loops.handle(name).result();
    expect(result.iterations).toBe(2);

    const { rows } = await f.db.pool.query<{
      iteration: number;
      eval_set: string;
      category: string;
      correct: number;
      total: number;
      accuracy: number;
    }>(
      `SELECT iteration, eval_set, category, correct, total, accuracy FROM evaluations
       WHERE loop_name = $1 AND eval_set = 'bfcl-eval' ORDER BY iteration, category`,
      [name],
    );
    let multiTurnCorrect = 0;
    for (const iteration of [0, 1, 2]) {
      const at = rows.filter((r) => r.iteration === iteration);
      const row = (category: string) => {
        const found = at.find((r) => r.category === category);
        if (!found) throw new Error(`iteration ${iteration} has no ${category} row`);
        return found;
      };
      expect(at.map((r) => r.category).sort()).toEqual([...ALL, 'live', 'multi_turn', 'non_live', 'overall'].sort());
      // live_parallel has 16 questions, live_relevance 16: all categories have more than PER_CATEGORY.
      for (const category of ALL) expect(row(category).total, `${iteration} ${category}`).toBe(PER_CATEGORY);
      const acc = (category: string) => row(category).correct / row(category).total;
      // BFCL v3 (REAL-EDGES §7), recomputed from the category rows by hand.
      const nonLive = mean([mean(NON_LIVE_PARTS.map(acc)), ...NON_LIVE.map(acc)]);
      const live = LIVE.reduce((s, c) => s + row(c).correct, 0) / LIVE.reduce((s, c) => s + row(c).total, 0);
      const multiTurn = mean(MULTI_TURN.map(acc));
      expect(row('non_live').accuracy).toBeCloseTo(nonLive, 12);
      expect(row('live').accuracy).toBeCloseTo(live, 12);
      expect(row('multi_turn').accuracy).toBeCloseTo(multiTurn, 12);
      expect(row('overall').accuracy).toBeCloseTo(mean([nonLive, live, multiTurn]), 12);
      multiTurnCorrect += MULTI_TURN.reduce((s, c) => s + row(c).correct, 0);
      // What the loop reports for the iteration is that overall.
      const reported = iteration === 0 ? result.baselineAccuracy : result.history[iteration - 1]!.accuracy;
      expect(reported).toBeCloseTo(row('overall').accuracy, 12);
      if (iteration > 0)
        expect(result.history[iteration - 1]!.evaluation).toEqual({
          nonLive: expect.closeTo(nonLive, 12),
          live: expect.closeTo(live, 12),
          multiTurn: expect.closeTo(multiTurn, 12),
        });
    }
    // The simulated student answers multi-turn questions well enough to be scored: some pass, not all.
    expect(multiTurnCorrect).toBeGreaterThan(0);
    expect(multiTurnCorrect).toBeLessThan(3 * MULTI_TURN.length * PER_CATEGORY);

    // `loop status`: the iteration table with the v3 groups beside the overall.
    const status = await runLooptool(['loop', 'status', name], { env: f.env });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/non-live\s+live\s+multi-turn\s+accuracy/);
    const overall1 = rows.find((r) => r.iteration === 1 && r.category === 'overall')!.accuracy;
    expect(status.stdout).toContain(`${(overall1 * 100).toFixed(1)}%`);

    // The report: the summary table (Non-Live, Live, Multi-Turn, overall, relevance beside) and every category row.
    const html = renderReportHtml(await buildLoopReport(f.db.pool, name));
    expect(html).toContain('<th>Multi-Turn</th>');
    expect(html).toContain('<th>live_relevance</th>');
    expect(html).toContain('multi_turn_miss_func');
  }, 600_000);
});
