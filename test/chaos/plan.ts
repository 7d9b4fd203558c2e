/**
 * The chaos driver's fault plan: which faults, and at which point of the loop each one lands. Everything here is drawn
 * from a PRNG seeded with the run's seed, so one seed always gives one plan; the points are positions of the loop
 * (iteration, stage, share of the stage's rows written), never times, so a fault lands in the same stage however fast
 * the machine is.
 */
import type { FaultKind, FaultRule } from '../../sim/faults.js';
import { Rng } from '../../sim/random.js';
import type { LoopPhase } from '../../core/vocabulary.js';

/** The phases in the order one iteration runs them (`setup` only in iteration 1, `assemble` in all but the last). */
export const PHASE_ORDER: readonly LoopPhase[] = [
  'setup',
  'train',
  'deploy',
  'probe',
  'judge',
  'expand',
  'assemble',
  'evaluate',
  'done',
];

/**
 * Phases whose progress is counted in rows written page by page, so a fault can land part-way through them (the other
 * phases are one activity each, or write their rows at the end: a fault lands as they start).
 */
export const ROW_PHASES: ReadonlySet<LoopPhase> = new Set(['probe', 'judge', 'expand']);

/** A point of the loop: `share` of the phase's rows (as the reference run counted them) written. */
export interface Milestone {
  iteration: number;
  phase: LoopPhase;
  share: number;
}

/** A milestone as one number that grows as the loop moves on (`done` is infinity). */
export function ordinalOf(point: Milestone): number {
  if (point.phase === 'done') return Number.POSITIVE_INFINITY;
  return point.iteration * 100 + PHASE_ORDER.indexOf(point.phase) * 10 + Math.min(point.share, 0.999) * 9.99;
}

export function describeMilestone(point: Milestone): string {
  if (point.phase === 'done') return 'done';
  return `iter ${point.iteration} ${point.phase}${ROW_PHASES.has(point.phase) && point.share > 0 ? ` ≥${Math.round(point.share * 100)}%` : ''}`;
}

/** The sim fault kinds the driver injects: transient by nature, so the loop's results must not change. */
export const SIM_FAULT_KINDS = ['rate_limit', 'server_error', 'timeout', 'truncated', 'garbage'] as const;
export type SimFaultKind = (typeof SIM_FAULT_KINDS)[number] & FaultKind;

export type ChaosFaultKind =
  'worker_kill' | 'temporal_restart' | 'postgres_stop' | 'trainer_away' | `sim_${SimFaultKind}`;

export interface PlannedFault {
  id: number;
  kind: ChaosFaultKind;
  at: Milestone;
  /** How long the service stays away (postgres_stop, trainer_away). @unit milliseconds */
  durationMs?: number;
  /** The sim server rule (sim_* kinds). */
  rule?: FaultRule;
}

export interface ChaosProfile {
  name: 'full' | 'short' | 'outage';
  iterations: number;
  samples: number;
  workerKills: number;
  /**
   * The phases worker kills land in. The full profile kills everywhere; the short one (CI) leaves out the phases whose
   * one activity has no heartbeat timeout (setup and assemble: database activities, retried only after their
   * 10-minute start-to-close timeout) or a 5-minute one (deploy), which would stretch a CI run by that much.
   */
  killPhases?: readonly LoopPhase[];
  temporalRestarts: number;
  /** One entry per PostgreSQL stop: its length, or a [min, max] range drawn from. @unit milliseconds */
  postgresStops: (number | [number, number])[];
  /** How long the trainer API is taken away, once, during a training stage. @unit milliseconds */
  trainerAwayMs: number;
  /** Sim fault kinds injected, rules per kind, and how many requests each rule hits ([min, max]). */
  simFaults: {
    kinds: readonly SimFaultKind[];
    perKind: number;
    count: [number, number];
    timeoutCount: [number, number];
  };
  /** The held-out set: BFCL files under data/bfcl/, scored for the base model and after every iteration. */
  evalFiles: { questions: string; answers?: string }[];
}

const SIMPLE_PYTHON = {
  questions: 'data/bfcl/BFCL_v4_simple_python.json',
  answers: 'data/bfcl/possible_answer/BFCL_v4_simple_python.json',
};
const IRRELEVANCE = { questions: 'data/bfcl/BFCL_v4_irrelevance.json' };

export const PROFILES: Record<ChaosProfile['name'], ChaosProfile> = {
  full: {
    name: 'full',
    iterations: 3,
    samples: 400,
    workerKills: 20,
    temporalRestarts: 3,
    postgresStops: [6 * 60_000, [20_000, 60_000], [20_000, 60_000]],
    trainerAwayMs: 3 * 60_000,
    simFaults: { kinds: SIM_FAULT_KINDS, perKind: 3, count: [3, 8], timeoutCount: [1, 2] },
    evalFiles: [SIMPLE_PYTHON, IRRELEVANCE],
  },
  short: {
    name: 'short',
    iterations: 3,
    samples: 120,
    workerKills: 5,
    killPhases: ['train', 'probe', 'judge', 'expand', 'evaluate'],
    temporalRestarts: 1,
    postgresStops: [30_000],
    trainerAwayMs: 30_000,
    // No `timeout`: a request that never answers holds its batch for the model client's whole timeout (120 s), too
    // long for CI; the full profile has them.
    simFaults: {
      kinds: SIM_FAULT_KINDS.filter((kind) => kind !== 'timeout'),
      perKind: 1,
      count: [2, 4],
      timeoutCount: [1, 1],
    },
    evalFiles: [IRRELEVANCE],
  },
  /** The issue's long outages alone: PostgreSQL stopped for 10 minutes, the trainer API gone for 10 minutes. */
  outage: {
    name: 'outage',
    iterations: 2,
    samples: 200,
    workerKills: 0,
    temporalRestarts: 0,
    postgresStops: [10 * 60_000],
    trainerAwayMs: 10 * 60_000,
    simFaults: { kinds: [], perKind: 0, count: [1, 1], timeoutCount: [1, 1] },
    evalFiles: [IRRELEVANCE],
  },
};

/** Rows written per iteration and phase by the reference run: where "share of a phase" points to. */
export type PhaseRows = Record<number, Partial<Record<LoopPhase, number>>>;

/** Every phase of the loop in order, as (iteration, phase) slots. */
export function loopSlots(iterations: number): { iteration: number; phase: LoopPhase }[] {
  const slots: { iteration: number; phase: LoopPhase }[] = [];
  for (let iteration = 1; iteration <= iterations; iteration++) {
    for (const phase of PHASE_ORDER) {
      if (phase === 'done') continue;
      if (phase === 'setup' && iteration !== 1) continue;
      if (phase === 'assemble' && iteration === iterations) continue;
      slots.push({ iteration, phase });
    }
  }
  return slots;
}

/** The phases that call model servers (setup scores the base model), where a sim fault lands. */
const MODEL_PHASES: ReadonlySet<LoopPhase> = new Set(['setup', 'probe', 'judge', 'expand', 'evaluate']);

/**
 * Draws the plan: worker kills spread over the loop's phases (each phase once before any gets a second), the other
 * faults on phases drawn at random, the trainer outage in a training stage. Sorted by where they land.
 */
export function drawPlan(seed: number, profile: ChaosProfile, rows: PhaseRows): PlannedFault[] {
  const rng = new Rng(`looptool-chaos:${seed}:${profile.name}`);
  const slots = loopSlots(profile.iterations);
  // A share part-way through phases that write rows; the start of the others (they are one activity each).
  const at = (slot: { iteration: number; phase: LoopPhase }): Milestone => {
    const total = rows[slot.iteration]?.[slot.phase] ?? 0;
    return {
      ...slot,
      share: ROW_PHASES.has(slot.phase) && total > 1 ? Math.round((0.1 + 0.7 * rng.next()) * 100) / 100 : 0,
    };
  };
  const faults: Omit<PlannedFault, 'id'>[] = [];

  const killSlots = slots.filter((slot) => !profile.killPhases || profile.killPhases.includes(slot.phase));
  let spread: { iteration: number; phase: LoopPhase }[] = [];
  for (let i = 0; i < profile.workerKills; i++) {
    if (spread.length === 0) spread = rng.shuffle([...killSlots]);
    faults.push({ kind: 'worker_kill', at: at(spread.pop()!) });
  }
  for (let i = 0; i < profile.temporalRestarts; i++) faults.push({ kind: 'temporal_restart', at: at(rng.pick(slots)) });
  for (const length of profile.postgresStops) {
    const durationMs = typeof length === 'number' ? length : rng.int(length[0], length[1]);
    faults.push({ kind: 'postgres_stop', at: at(rng.pick(slots)), durationMs });
  }
  const trainSlots = slots.filter((slot) => slot.phase === 'train');
  faults.push({ kind: 'trainer_away', at: at(rng.pick(trainSlots)), durationMs: profile.trainerAwayMs });

  // A rule for no role in particular: it hits the next requests to the sim servers, which are those of the phase it
  // lands in, and cannot be left unused when that phase's last requests are already in flight (the loop always makes
  // more: the last iteration ends with its evaluation).
  const modelSlots = slots.filter((slot) => MODEL_PHASES.has(slot.phase));
  for (const kind of profile.simFaults.kinds) {
    for (let i = 0; i < profile.simFaults.perKind; i++) {
      const slot = at(rng.pick(modelSlots));
      const [min, max] = kind === 'timeout' ? profile.simFaults.timeoutCount : profile.simFaults.count;
      faults.push({
        kind: `sim_${kind}`,
        at: slot,
        rule: { kind, count: rng.int(min, max), ...(kind === 'rate_limit' ? { retryAfterSeconds: 1 } : {}) },
      });
    }
  }
  return faults
    .map((fault, index) => ({ fault, index }))
    .sort((a, b) => ordinalOf(a.fault.at) - ordinalOf(b.fault.at) || a.index - b.index)
    .map(({ fault }, id) => ({ id: id + 1, ...fault }));
}
