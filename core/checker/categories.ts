/**
 * BFCL's single-turn test categories and how the official evaluator dispatches them (`eval_runner.py`,
 * `ast_checker.py`): relevance/irrelevance first, then `parallel` before `multiple` by substring.
 */

/** The categories this checker scores, with BFCL v4 names (`simple` is v3's name for `simple_python`). */
export const BFCL_CATEGORIES = [
  'simple',
  'simple_python',
  'multiple',
  'parallel',
  'parallel_multiple',
  'irrelevance',
  'live_simple',
  'live_multiple',
  'live_parallel',
  'live_parallel_multiple',
  'live_irrelevance',
  'live_relevance',
] as const;
export type BfclCategory = (typeof BFCL_CATEGORIES)[number];

/** Which checker a category uses. */
export type BfclCheckKind = 'simple' | 'multiple' | 'parallel' | 'irrelevance' | 'relevance';

/**
 * The checker BFCL runs for a category, or undefined for categories it scores some other way (Java/JavaScript type
 * converters, multi-turn state simulators, agentic and memory suites), which this port does not cover.
 */
export function bfclCheckKind(category: string): BfclCheckKind | undefined {
  if (/java|multi_turn|memory|web_search|agentic|format_sensitivity|sql|exec|rest|chatable/.test(category))
    return undefined;
  if (category.includes('irrelevance')) return 'irrelevance';
  if (category.includes('relevance')) return 'relevance';
  if (category.includes('parallel')) return 'parallel';
  if (category.includes('multiple')) return 'multiple';
  if (category.includes('simple')) return 'simple';
  return undefined;
}

/**
 * The category in a BFCL entry id, as BFCL's `extract_test_category_from_id` reads it: everything before the last `_`
 * (`simple_python_12` → `simple_python`, `live_simple_19-3-15` → `live_simple`).
 */
export function categoryFromId(id: string): string {
  const cut = id.lastIndexOf('_');
  return cut <= 0 ? id : id.slice(0, cut);
}
