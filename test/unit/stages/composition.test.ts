import { describe, expect, test } from 'vitest';
import { LoopConfig } from '../../../core/config.js';
import { type CompositionShares, planComposition, seedNewTarget } from '../../../core/stages/composition.js';

/** The loop config's defaults for the shares (one definition: core/config.ts). */
const defaults: CompositionShares = (() => {
  const { data } = LoopConfig.parse({
    data: { seedDataset: 'seed' },
    models: { policy: { model: 'p' }, judge: { model: 'j' }, generator: { model: 'g' } },
    training: { backend: 'sim', url: 'http://127.0.0.1:1' },
  });
  return data;
})();

/**
 * The paper's Table 3 (LOOPTOOL-METHOD.md §1.3): round sizes and, from them, the acceptance rate of EDDE with k = 4
 * (|D^EE| / 4|D^ES|). Fed the iteration's error seeds, the expansions its acceptance rate yields and plenty of
 * mastered samples, the plan must give the paper's composition exactly.
 */
const BUDGET = 18_304;
const TABLE_3 = [
  { round: 2, errorSeeds: 1_919, expansions: 6_566, highPpl: 4_187, seedNew: 5_632 },
  { round: 3, errorSeeds: 3_386, expansions: 8_066, highPpl: 4_036, seedNew: 2_816 },
  { round: 4, errorSeeds: 3_731, expansions: 8_169, highPpl: 4_996, seedNew: 1_408 },
];

describe("Eq. 5 as shares of the budget (the paper's Table 3)", () => {
  test('the defaults reproduce D_2, D_3 and D_4 of Table 3 from the round sizes and acceptance rates', () => {
    for (const row of TABLE_3) {
      const generated = 4 * row.errorSeeds;
      const acceptance = row.expansions / generated;
      const plan = planComposition({
        budget: BUDGET,
        iteration: row.round - 1,
        shares: defaults,
        available: {
          injected: 0,
          errorSeeds: row.errorSeeds,
          seedNew: 28_160 - 18_304, // the pool left after D_1
          expansions: Math.round(acceptance * generated),
          mastered: 12_000,
        },
      });
      expect(plan).toEqual({
        injected: 0,
        errorSeeds: row.errorSeeds,
        seedNew: row.seedNew,
        expansions: row.expansions,
        highPpl: row.highPpl,
      });
      expect(plan.errorSeeds + plan.seedNew + plan.expansions + plan.highPpl).toBe(BUDGET);
      // High-PPL holds 22–27% of each round, as in the paper.
      expect(plan.highPpl / BUDGET).toBeGreaterThanOrEqual(0.22);
    }
  });

  test('seed-new halves each round: 5,632 / 2,816 / 1,408 of 18,304', () => {
    expect([1, 2, 3].map((j) => seedNewTarget(BUDGET, j, defaults))).toEqual([5_632, 2_816, 1_408]);
  });

  test('an EDDE that accepts everything still leaves high-PPL its floor (22%): expansions take the room above it', () => {
    const plan = planComposition({
      budget: BUDGET,
      iteration: 2,
      shares: defaults,
      available: { injected: 0, errorSeeds: 3_386, seedNew: 9_856, expansions: 4 * 3_386, mastered: 12_000 },
    });
    expect(plan.highPpl).toBe(Math.ceil(BUDGET * 0.22));
    expect(plan.expansions).toBe(BUDGET - 3_386 - 2_816 - Math.ceil(BUDGET * 0.22));
    expect(plan.errorSeeds + plan.seedNew + plan.expansions + plan.highPpl).toBe(BUDGET);
  });

  test("a weak policy's error seeds are capped at 25% of the budget; the total never exceeds it", () => {
    const plan = planComposition({
      budget: 1_000,
      iteration: 1,
      shares: defaults,
      available: { injected: 0, errorSeeds: 900, seedNew: 5_000, expansions: 3_600, mastered: 50 },
    });
    expect(plan.errorSeeds).toBe(250);
    // Fewer mastered samples than the floor: the floor shrinks to them and expansions take the rest.
    expect(plan.highPpl).toBe(50);
    expect(plan).toMatchObject({ seedNew: 308, expansions: 1_000 - 250 - 308 - 50 });
    expect(plan.errorSeeds + plan.seedNew + plan.expansions + plan.highPpl).toBe(1_000);
  });

  test('injected data comes first, whole, and the rest shrinks to keep the total at the budget', () => {
    const plan = planComposition({
      budget: 1_000,
      iteration: 1,
      shares: defaults,
      available: { injected: 400, errorSeeds: 100, seedNew: 5_000, expansions: 3_600, mastered: 500 },
    });
    expect(plan.injected).toBe(400);
    expect(plan.injected + plan.errorSeeds + plan.seedNew + plan.expansions + plan.highPpl).toBe(1_000);
    // 600 left: 100 error seeds, 308 seed-new, and the rest (less than the 220 floor) all high-PPL.
    expect(plan).toMatchObject({ errorSeeds: 100, seedNew: 308, expansions: 0, highPpl: 192 });
  });

  test('never more of a part than exists, never a negative count', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const r = (n: number) => Math.floor((((seed * 2_654_435_761) % 2 ** 32) / 2 ** 32) * n * ((seed % 7) + 1));
      const available = {
        injected: r(50),
        errorSeeds: r(400),
        seedNew: r(900),
        expansions: r(1_600),
        mastered: r(800),
      };
      const budget = 1 + r(2_000);
      const plan = planComposition({ budget, iteration: 1 + (seed % 4), shares: defaults, available });
      const total = plan.injected + plan.errorSeeds + plan.seedNew + plan.expansions + plan.highPpl;
      expect(total).toBeLessThanOrEqual(Math.max(budget, available.injected));
      expect(plan.errorSeeds).toBeLessThanOrEqual(Math.min(available.errorSeeds, Math.floor(budget * 0.25)));
      expect(plan.seedNew).toBeLessThanOrEqual(available.seedNew);
      expect(plan.expansions).toBeLessThanOrEqual(available.expansions);
      expect(plan.highPpl).toBeLessThanOrEqual(available.mastered);
      for (const n of Object.values(plan)) expect(n).toBeGreaterThanOrEqual(0);
    }
  });
});
