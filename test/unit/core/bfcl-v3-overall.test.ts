/**
 * BFCL v3's overall (REAL-EDGES §7) on a hand-made table: Non-Live = unweighted mean of {simple (mean of python, java,
 * javascript), multiple, parallel, parallel_multiple}; Live = count-weighted mean of the live AST categories;
 * Multi-Turn = unweighted mean of {base, miss_func, miss_param, long_context}; overall = unweighted mean of the three;
 * relevance and irrelevance beside it, not inside.
 */
import { describe, expect, test } from 'vitest';
import {
  bfclSummaryRows,
  bfclV3Summary,
  DEFAULT_BFCL_CATEGORIES,
  expandBfclCategories,
  type CategoryScore,
} from '../../../core/stages/bfcl-overall.js';

const TABLE: CategoryScore[] = [
  { category: 'simple_python', correct: 80, total: 100 }, // 0.8
  { category: 'simple_java', correct: 30, total: 50 }, // 0.6
  { category: 'simple_javascript', correct: 10, total: 25 }, // 0.4   simple = 0.6
  { category: 'multiple', correct: 45, total: 50 }, // 0.9
  { category: 'parallel', correct: 35, total: 50 }, // 0.7
  { category: 'parallel_multiple', correct: 25, total: 50 }, // 0.5   Non-Live = (0.6 + 0.9 + 0.7 + 0.5) / 4 = 0.675
  { category: 'irrelevance', correct: 0, total: 40 }, // beside
  { category: 'live_simple', correct: 60, total: 100 },
  { category: 'live_multiple', correct: 280, total: 400 },
  { category: 'live_parallel', correct: 10, total: 10 },
  { category: 'live_parallel_multiple', correct: 50, total: 90 }, // Live = 400 / 600
  { category: 'live_irrelevance', correct: 0, total: 300 }, // beside
  { category: 'live_relevance', correct: 0, total: 16 }, // beside
  { category: 'multi_turn_base', correct: 20, total: 100 }, // 0.2
  { category: 'multi_turn_miss_func', correct: 10, total: 100 }, // 0.1
  { category: 'multi_turn_miss_param', correct: 15, total: 100 }, // 0.15
  { category: 'multi_turn_long_context', correct: 5, total: 100 }, // 0.05  Multi-Turn = 0.125
];

describe('BFCL v3 overall', () => {
  test('follows the published formula on a hand-made table', () => {
    const summary = bfclV3Summary(TABLE);
    expect(summary.nonLive).toBeCloseTo(0.675, 12);
    expect(summary.live).toBeCloseTo(400 / 600, 12);
    expect(summary.multiTurn).toBeCloseTo(0.125, 12);
    expect(summary.overall).toBeCloseTo((0.675 + 400 / 600 + 0.125) / 3, 12);
  });

  test('relevance and irrelevance do not move it', () => {
    const changed = TABLE.map((row) =>
      ['irrelevance', 'live_irrelevance', 'live_relevance'].includes(row.category)
        ? { ...row, correct: row.total }
        : row,
    );
    expect(bfclV3Summary(changed)).toEqual(bfclV3Summary(TABLE));
  });

  test('v3 names (simple, java, javascript) count as the parts of simple too', () => {
    const v3 = TABLE.map((row) => ({
      ...row,
      category:
        { simple_python: 'simple', simple_java: 'java', simple_javascript: 'javascript' }[row.category] ?? row.category,
    }));
    expect(bfclV3Summary(v3)).toEqual(bfclV3Summary(TABLE));
  });

  test('a subset: groups over what was evaluated, the overall over the groups present', () => {
    const onlyMultiTurn = TABLE.filter((row) => row.category.startsWith('multi_turn'));
    const summary = bfclV3Summary(onlyMultiTurn);
    expect(Object.keys(summary)).toEqual(['multiTurn', 'overall']);
    expect(summary.multiTurn).toBeCloseTo(0.125, 12);
    expect(summary.overall).toBeCloseTo(0.125, 12);
    expect(bfclV3Summary([{ category: 'irrelevance', correct: 3, total: 4 }])).toEqual({});
  });

  test('summary rows: the accuracies above, correct and total of the categories inside; old summary rows ignored', () => {
    const rows = bfclSummaryRows([...TABLE, { category: 'overall', correct: 1, total: 1 }]);
    expect(rows.map((r) => r.category)).toEqual(['non_live', 'live', 'multi_turn', 'overall']);
    const row = (category: string) => rows.find((r) => r.category === category)!;
    expect(row('live')).toEqual({ category: 'live', correct: 400, total: 600, accuracy: 400 / 600 });
    expect(row('multi_turn')).toMatchObject({ correct: 50, total: 400 });
    expect(row('non_live')).toMatchObject({ correct: 225, total: 325 });
    expect(row('overall').accuracy).toBeCloseTo((0.675 + 400 / 600 + 0.125) / 3, 12);
  });

  test('groups expand to their categories, each once, in BFCL order', () => {
    expect(expandBfclCategories(['multi_turn', 'multi_turn_base', 'live_relevance'])).toEqual([
      'live_relevance',
      'multi_turn_base',
      'multi_turn_miss_func',
      'multi_turn_miss_param',
      'multi_turn_long_context',
    ]);
    expect(expandBfclCategories(DEFAULT_BFCL_CATEGORIES)).toHaveLength(17);
  });
});
