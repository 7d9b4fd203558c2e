import type { IterationSummary } from './inputs.js';
import type { MemberRole } from './vocabulary.js';

/**
 * Every member role in the order people read them: the paper's Table 3 (error seeds, relabeled, expanded, high PPL,
 * seed-new), then imported seed data and data injected into a running loop. A test checks it lists each role once.
 */
export const MEMBER_ROLE_DISPLAY_ORDER = [
  'error_seed',
  'relabeled',
  'expanded',
  'high_ppl',
  'seed_new',
  'seed',
  'injected',
] as const satisfies readonly MemberRole[];

/** The roles the iteration table shows (imported seed members count as `seed_new`: D_1 is drawn from the seed pool). */
export const ITERATION_TABLE_ROLES = MEMBER_ROLE_DISPLAY_ORDER.filter(
  (role): role is Exclude<MemberRole, 'seed'> => role !== 'seed',
);

/** An accuracy as people read it: `71.9%`, or `–` when there is none. */
export function formatPercent(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)}%`;
}

/** BFCL v3's group scores of an iteration's evaluation (`IterationSummary.evaluation`) and their column labels. */
const BFCL_GROUP_COLUMNS = [
  ['nonLive', 'non-live'],
  ['live', 'live'],
  ['multiTurn', 'multi-turn'],
] as const;

/** A table cell: numbers stay numbers, so a renderer can align them. */
export type TableCell = string | number;

/**
 * What each iteration of a loop trained on and scored (the paper's Table 3 plus held-out accuracy), with the base
 * model as iteration 0: one definition for the UI's current details (markdown) and the CLI (plain text). `seed_new`
 * counts imported seed members too: D_1 is drawn from the seed pool.
 */
export function iterationTable(status: {
  baselineAccuracy?: number | null | undefined;
  baselineHeldOutAccuracy?: number | null | undefined;
  history: readonly IterationSummary[];
}): {
  headers: string[];
  rows: TableCell[][];
} {
  const count = (h: IterationSummary, role: (typeof ITERATION_TABLE_ROLES)[number]): number =>
    role === 'seed_new' ? (h.countsByRole.seed_new ?? 0) + (h.countsByRole.seed ?? 0) : (h.countsByRole[role] ?? 0);
  // BFCL v3's groups, shown once some iteration has them (the bfcl-eval backend, or builtin sets that cover them);
  // `accuracy` is their overall.
  const groups = BFCL_GROUP_COLUMNS.filter(([key]) => status.history.some((h) => h.evaluation?.[key] !== undefined));
  // Prompts the probe found too long (never error seeds, never trained on), shown once an iteration had some; the
  // seed pool's held-out slice, shown once it was scored.
  const tooLong = status.history.some((h) => (h.probe?.too_long ?? 0) > 0);
  const heldOut =
    status.baselineHeldOutAccuracy !== undefined || status.history.some((h) => h.heldOutAccuracy !== undefined);
  return {
    headers: [
      'iter',
      'dataset',
      ...ITERATION_TABLE_ROLES,
      ...(tooLong ? ['too long'] : []),
      ...(heldOut ? ['held-out'] : []),
      ...groups.map(([, label]) => label),
      'accuracy',
    ],
    rows: [
      [
        '0 (base)',
        '',
        ...ITERATION_TABLE_ROLES.map(() => ''),
        ...(tooLong ? [''] : []),
        ...(heldOut ? [formatPercent(status.baselineHeldOutAccuracy)] : []),
        ...groups.map(() => formatPercent(undefined)),
        formatPercent(status.baselineAccuracy),
      ],
      ...status.history.map((h) => [
        String(h.iteration),
        h.dataset,
        ...ITERATION_TABLE_ROLES.map((role) => count(h, role)),
        ...(tooLong ? [h.probe?.too_long ?? 0] : []),
        ...(heldOut ? [formatPercent(h.heldOutAccuracy)] : []),
        ...groups.map(([key]) => formatPercent(h.evaluation?.[key])),
        formatPercent(h.accuracy),
      ]),
    ],
  };
}

/**
 * What training and deployment did in each iteration: the weights kind, optimizer steps, the run's final mean reward
 * (as the trainer logged it), the checkpoint and the name it was served under. Empty when no iteration trained.
 */
export function trainingTable(history: readonly IterationSummary[]): { headers: string[]; rows: TableCell[][] } {
  const trained = history.filter((h) => h.training);
  const reward = (metrics: Record<string, number>) => {
    const value = metrics.reward ?? metrics.reward_mean;
    return value === undefined ? '–' : value.toFixed(3);
  };
  return {
    headers: ['iter', 'weights', 'steps', 'reward', 'checkpoint', 'served as'],
    rows: trained.map((h) => [
      String(h.iteration),
      h.training!.kind,
      h.training!.steps,
      reward(h.training!.metrics),
      h.checkpoint ?? '',
      h.servedModel ?? '',
    ]),
  };
}

/** A table as GitHub-flavoured markdown (the Temporal UI renders current details as markdown). */
export function markdownTable(headers: readonly string[], rows: readonly (readonly TableCell[])[]): string {
  const line = (cells: readonly TableCell[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(headers), `|${headers.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n');
}
