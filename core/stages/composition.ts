/**
 * Eq. 5's composition of D_{j+1} as shares of a fixed budget B (LOOPTOOL-METHOD.md §1.3, Table 3). The paper holds
 * every round at B, keeps the error seeds, halves the fresh seed data each round, adds the expansions that passed
 * validation and fills the rest with high-perplexity mastered samples (22–27% of each round). Taken literally (seeds,
 * then seed-new, then expansions, then high-PPL into whatever is left) a good EDDE acceptance rate leaves no room for
 * high-PPL at all, and a bad policy's error seeds alone can overflow B. So the plan reserves:
 *
 * 1. injected data first (what people injected is merged whole; it takes room from the rest),
 * 2. error seeds up to `errorSeedMaxShare` of B (the paper's rounds hold 10–20%),
 * 3. seed-new by the halving schedule,
 * 4. a floor of `highPplMinShare` of B for high-PPL (or every mastered sample when there are fewer),
 * 5. expansions into the room left above that floor, balanced per seed when they do not all fit,
 * 6. high-PPL into everything still free.
 *
 * No part exceeds what is available, and the total never exceeds B (unless the injected data alone does).
 */
export interface CompositionShares {
  /** The most of B that error seeds (PRED_WRONG with their labels, LABEL_WRONG corrected) may take. */
  errorSeedMaxShare: number;
  /** The least of B kept for high-perplexity mastered samples, when that many exist. */
  highPplMinShare: number;
  /** Fresh seed data in D_2, as a share of B. */
  seedNewFraction: number;
  /** Each later round's seed-new is this times the previous one (the paper halves it). */
  seedNewDecay: number;
}

/** What the iteration produced that D_{j+1} may take: counts, before any cut. */
export interface CompositionAvailable {
  injected: number;
  errorSeeds: number;
  /** Seed-pool samples this loop never used (the held-out slice excluded). */
  seedNew: number;
  /** Accepted EDDE expansions. */
  expansions: number;
  /** Mastered samples of D_j (matched, or judged BOTH_CORRECT by consensus) not already taken as something else. */
  mastered: number;
}

/** How many of each role D_{j+1} takes. */
export interface CompositionPlan {
  injected: number;
  errorSeeds: number;
  seedNew: number;
  expansions: number;
  highPpl: number;
}

/** The seed-new count of D_{j+1} by the halving schedule: B · share · decay^(j−1) (5,632 / 2,816 / 1,408). */
export function seedNewTarget(budget: number, iteration: number, shares: CompositionShares): number {
  return Math.round(budget * shares.seedNewFraction * shares.seedNewDecay ** (iteration - 1));
}

/** How many of each part D_{j+1} takes (the activity then picks which, set-based). `iteration` is j. */
export function planComposition(input: {
  budget: number;
  iteration: number;
  shares: CompositionShares;
  available: CompositionAvailable;
}): CompositionPlan {
  const { budget, shares, available } = input;
  let room = budget;
  const take = (wanted: number) => {
    const n = Math.max(0, Math.min(wanted, room));
    room -= n;
    return n;
  };
  const injected = available.injected;
  room = Math.max(0, room - injected);
  const errorSeeds = take(Math.min(available.errorSeeds, Math.floor(budget * shares.errorSeedMaxShare)));
  const seedNew = take(Math.min(available.seedNew, seedNewTarget(budget, input.iteration, shares)));
  const highPplFloor = Math.min(available.mastered, Math.ceil(budget * shares.highPplMinShare), room);
  const expansions = Math.max(0, Math.min(available.expansions, room - highPplFloor));
  room -= expansions;
  const highPpl = take(available.mastered);
  return { injected, errorSeeds, seedNew, expansions, highPpl };
}
