export interface CategoryScore {
  category: string;
  correct: number;
  total: number;
}

const NON_LIVE = ['simple', 'multiple', 'parallel', 'parallel_multiple', 'irrelevance'] as const;
const SIMPLE_PARTS = ['simple_python', 'simple', 'simple_java', 'simple_javascript'];
const LIVE = [
  'live_simple',
  'live_multiple',
  'live_parallel',
  'live_parallel_multiple',
  'live_irrelevance',
  'live_relevance',
];

/**
 * BFCL v3's summary scores (`eval_runner_helper.py` @65a1c944, BFCL-CHECKER.md §C7) from per-category scores:
 * Non-Live is the unweighted mean of simple (itself the mean of its python/java/javascript parts), multiple, parallel,
 * parallel_multiple and irrelevance; Live is the entry-weighted mean of the live categories. BFCL counts a missing
 * category as 0; here a group is computed over the categories that were evaluated, and `overall` is the unweighted
 * mean of the groups present, because a loop's held-out set is usually a subset of BFCL (documented deviation).
 */
export function bfclV3Summary(scores: readonly CategoryScore[]): { nonLive?: number; live?: number; overall?: number } {
  const accuracy = (s: CategoryScore) => (s.total === 0 ? 0 : s.correct / s.total);
  const byName = new Map(scores.map((s) => [s.category, s]));
  const simpleParts = SIMPLE_PARTS.flatMap((name) => (byName.has(name) ? [accuracy(byName.get(name)!)] : []));
  const nonLiveParts = NON_LIVE.flatMap((name) => {
    if (name === 'simple')
      return simpleParts.length > 0 ? [simpleParts.reduce((a, b) => a + b, 0) / simpleParts.length] : [];
    return byName.has(name) ? [accuracy(byName.get(name)!)] : [];
  });
  const liveScores = LIVE.flatMap((name) => (byName.has(name) ? [byName.get(name)!] : []));
  const liveTotal = liveScores.reduce((sum, s) => sum + s.total, 0);
  const nonLive = nonLiveParts.length > 0 ? nonLiveParts.reduce((a, b) => a + b, 0) / nonLiveParts.length : undefined;
  const live = liveTotal > 0 ? liveScores.reduce((sum, s) => sum + s.correct, 0) / liveTotal : undefined;
  const groups = [nonLive, live].filter((g): g is number => g !== undefined);
  return {
    ...(nonLive !== undefined ? { nonLive } : {}),
    ...(live !== undefined ? { live } : {}),
    ...(groups.length > 0 ? { overall: groups.reduce((a, b) => a + b, 0) / groups.length } : {}),
  };
}
