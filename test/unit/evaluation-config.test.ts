/** The `evaluation` section of a loop config: the backend, its categories and the per-category limit. */
import { describe, expect, test } from 'vitest';
import { LoopConfig, loopConfigIssues } from '../../core/config.js';

const base = {
  data: { seedDataset: 'seed' },
  models: {
    policy: { model: 'p', baseUrls: ['http://localhost:1/v1'] },
    judge: { model: 'j', baseUrls: ['http://localhost:1/v1'] },
    generator: { model: 'g', baseUrls: ['http://localhost:1/v1'] },
  },
  training: { backend: 'sim', url: 'http://localhost:1' },
};

function issues(evaluation: unknown) {
  const parsed = LoopConfig.safeParse({ ...base, evaluation });
  return parsed.success ? [] : loopConfigIssues(parsed.error, { ...base, evaluation });
}

describe('evaluation config', () => {
  test('defaults to the builtin backend, keeping what configs without it did', () => {
    const config = LoopConfig.parse(base);
    expect(config.evaluation).toEqual({ backend: 'builtin', sets: [] });
  });

  test('bfcl-eval takes BFCL categories and groups and a per-category limit', () => {
    const config = LoopConfig.parse({
      ...base,
      evaluation: { backend: 'bfcl-eval', categories: ['non_live', 'live_simple', 'multi_turn'], maxPerCategory: 5 },
    });
    expect(config.evaluation).toEqual({
      backend: 'bfcl-eval',
      sets: [],
      categories: ['non_live', 'live_simple', 'multi_turn'],
      maxPerCategory: 5,
    });
  });

  test('bad input is refused where it is, saying why', () => {
    expect(issues({ backend: 'bfcl-eval', sets: [{ name: 'x', files: [{ questions: 'q.json' }] }] })).toEqual([
      {
        path: ['evaluation', 'sets'],
        message: expect.stringMatching(/sets are for the builtin backend/),
      },
    ]);
    expect(issues({ categories: ['live'] })).toEqual([
      {
        path: ['evaluation', 'categories'],
        message: expect.stringMatching(/categories are for the bfcl-eval backend/),
      },
    ]);
    expect(issues({ backend: 'bfcl-eval', categories: ['web_search_base'] })).toEqual([
      { path: ['evaluation', 'categories', 0], message: expect.stringMatching(/Invalid/) },
    ]);
    expect(issues({ backend: 'bfcl', maxPerCategory: 0 }).map((i) => i.path)).toEqual([
      ['evaluation', 'backend'],
      ['evaluation', 'maxPerCategory'],
    ]);
  });
});
