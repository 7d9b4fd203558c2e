import { BfclHarnessCategory, type BfclHarnessGroup } from '../vocabulary.js';

export interface CategoryScore {
  category: string;
  correct: number;
  total: number;
}

/** The parts of Non-Live's `simple`: v3's `simple` (v4: `simple_python`), `java`, `javascript` (v4: `simple_*`). */
const SIMPLE_PARTS = ['simple_python', 'simple', 'simple_java', 'java', 'simple_javascript', 'javascript'];
const NON_LIVE = ['simple', 'multiple', 'parallel', 'parallel_multiple'] as const;
const LIVE = ['live_simple', 'live_multiple', 'live_parallel', 'live_parallel_multiple'];
const MULTI_TURN = ['multi_turn_base', 'multi_turn_miss_func', 'multi_turn_miss_param', 'multi_turn_long_context'];
/** Reported beside the overall, not inside it. */
const RELEVANCE = ['irrelevance', 'live_irrelevance', 'live_relevance'];

/** The summary rows an evaluation stores beside its category rows (their `category` values). */
export const SUMMARY_CATEGORIES = ['non_live', 'live', 'multi_turn', 'overall'] as const;
export type SummaryCategory = (typeof SUMMARY_CATEGORIES)[number];

/** The categories of each group name `evaluation.categories` accepts (BFCL's collections, restricted to v3). */
const GROUPS: Record<BfclHarnessGroup, readonly BfclHarnessCategory[]> = {
  non_live: [
    'simple_python',
    'simple_java',
    'simple_javascript',
    'multiple',
    'parallel',
    'parallel_multiple',
    'irrelevance',
  ],
  live: [
    'live_simple',
    'live_multiple',
    'live_parallel',
    'live_parallel_multiple',
    'live_irrelevance',
    'live_relevance',
  ],
  multi_turn: ['multi_turn_base', 'multi_turn_miss_func', 'multi_turn_miss_param', 'multi_turn_long_context'],
  single_turn: [],
  all_v3: [],
};
GROUPS.single_turn = [...GROUPS.non_live, ...GROUPS.live];
GROUPS.all_v3 = [...GROUPS.single_turn, ...GROUPS.multi_turn];

/** Categories and group names as a list of categories, each once, in BFCL's order. */
export function expandBfclCategories(
  names: readonly (BfclHarnessCategory | BfclHarnessGroup)[],
): BfclHarnessCategory[] {
  const wanted = new Set<string>(
    names.flatMap((name): readonly string[] => (name in GROUPS ? GROUPS[name as BfclHarnessGroup] : [name])),
  );
  return BfclHarnessCategory.options.filter((category) => wanted.has(category));
}

/** What `evaluation.categories` means when the bfcl-eval backend is chosen without naming any: the whole v3 suite. */
export const DEFAULT_BFCL_CATEGORIES: readonly BfclHarnessGroup[] = ['non_live', 'live', 'multi_turn'];

export interface BfclV3Summary {
  nonLive?: number;
  live?: number;
  multiTurn?: number;
  overall?: number;
}

/**
 * BFCL v3's summary scores from per-category scores, as REAL-EDGES §7 states the published v3 overall (the number the
 * LoopTool paper reports, 74.93%):
 * - Non-Live: the unweighted mean of simple (itself the unweighted mean of its python/java/javascript parts), multiple,
 *   parallel and parallel_multiple;
 * - Live: the entry-count-weighted mean of live_simple, live_multiple, live_parallel and live_parallel_multiple;
 * - Multi-Turn: the unweighted mean of base, miss_func, miss_param and long_context;
 * - Overall: the unweighted mean of Non-Live, Live and Multi-Turn.
 * Irrelevance, live_irrelevance and live_relevance stay category rows reported beside it. Why not inside: the
 * leaderboard code of the v3 era (`eval_runner_helper.py` @65a1c944, BFCL-CHECKER.md §C7) averaged irrelevance into
 * Non-Live and the live (ir)relevance sets into Live, which is the earlier reading; §7 is what this project follows
 * for "v3 overall", and v4 itself moved them out of both groups too (#602). This is the one definition: the built-in
 * backend and the bfcl-eval backend both summarize with it.
 *
 * BFCL counts a missing category as 0; here a group is computed over the categories that were evaluated and the
 * overall over the groups present, because a loop's held-out set is often a subset of BFCL (documented deviation:
 * with every category evaluated the two agree).
 */
export function bfclV3Summary(scores: readonly CategoryScore[]): BfclV3Summary {
  const accuracy = (s: CategoryScore) => (s.total === 0 ? 0 : s.correct / s.total);
  const mean = (values: readonly number[]) =>
    values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : undefined;
  const byName = new Map(scores.map((s) => [s.category, s]));
  const present = (names: readonly string[]) => names.flatMap((name) => (byName.has(name) ? [byName.get(name)!] : []));
  const simple = mean(present(SIMPLE_PARTS).map(accuracy));
  const nonLive = mean(
    NON_LIVE.flatMap((name) => {
      if (name === 'simple') return simple === undefined ? [] : [simple];
      return present([name]).map(accuracy);
    }),
  );
  const liveScores = present(LIVE);
  const liveTotal = liveScores.reduce((sum, s) => sum + s.total, 0);
  const live = liveTotal > 0 ? liveScores.reduce((sum, s) => sum + s.correct, 0) / liveTotal : undefined;
  const multiTurn = mean(present(MULTI_TURN).map(accuracy));
  const overall = mean([nonLive, live, multiTurn].filter((g): g is number => g !== undefined));
  return {
    ...(nonLive !== undefined ? { nonLive } : {}),
    ...(live !== undefined ? { live } : {}),
    ...(multiTurn !== undefined ? { multiTurn } : {}),
    ...(overall !== undefined ? { overall } : {}),
  };
}

/**
 * The summary rows of an evaluation (`non_live`, `live`, `multi_turn`, `overall`) from its category rows: the accuracy
 * is {@link bfclV3Summary}'s; correct and total add up the categories inside the group (so a reader sees how many
 * questions stand behind it). Summary rows among the input are ignored, so a re-run summarizes the same way.
 */
export function bfclSummaryRows(
  rows: readonly CategoryScore[],
): { category: SummaryCategory; correct: number; total: number; accuracy: number }[] {
  const categories = rows.filter((r) => !(SUMMARY_CATEGORIES as readonly string[]).includes(r.category));
  const summary = bfclV3Summary(categories);
  const members: Record<SummaryCategory, readonly string[]> = {
    non_live: [...SIMPLE_PARTS, ...NON_LIVE],
    live: LIVE,
    multi_turn: MULTI_TURN,
    overall: [...SIMPLE_PARTS, ...NON_LIVE, ...LIVE, ...MULTI_TURN],
  };
  const value: Record<SummaryCategory, number | undefined> = {
    non_live: summary.nonLive,
    live: summary.live,
    multi_turn: summary.multiTurn,
    overall: summary.overall,
  };
  return SUMMARY_CATEGORIES.flatMap((category) => {
    const accuracy = value[category];
    if (accuracy === undefined) return [];
    const inside = categories.filter((r) => members[category].includes(r.category));
    return [
      {
        category,
        accuracy,
        total: inside.reduce((sum, r) => sum + r.total, 0),
        correct: inside.reduce((sum, r) => sum + r.correct, 0),
      },
    ];
  });
}

/** The categories reported beside the overall (relevance and irrelevance). */
export const BESIDE_OVERALL: readonly string[] = RELEVANCE;
