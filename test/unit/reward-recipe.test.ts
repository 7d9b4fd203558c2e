import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';

const RECIPES = fileURLToPath(new URL('../../recipes/', import.meta.url));

/** Runs the verl reward function of recipes/ with Python, as verl would, on (response, label) pairs. */
function scores(pairs: [string, string][]): number[] {
  const script = `import json,sys\nsys.path.insert(0, ${JSON.stringify(RECIPES)})\nfrom looptool_reward import compute_score\nprint(json.dumps([compute_score('looptool', r, g) for r, g in json.load(sys.stdin)]))`;
  const result = spawnSync('python3', ['-c', script], { input: JSON.stringify(pairs), encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout);
}

const call = (name: string, args: object) => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;

describe('recipes/looptool_reward.py (the GRPO reward)', () => {
  test('matches calls as a multiset, counts duplicates, keeps list order, ignores <think>', () => {
    const a = call('f', { x: 1, tags: ['a', 'b'] });
    const b = call('g', { y: true });
    expect(
      scores([
        [`${b}\n${a}`, `${a}\n${b}`],
        [`${a}\n${a}\n${b}`, `${a}\n${b}\n${b}`],
        [call('f', { x: 1, tags: ['b', 'a'] }), a],
        [call('g', { y: 1 }), b],
        [`<think>${a}</think>I cannot help.`, 'I cannot help with that.'],
        ['<tool_call>{broken</tool_call>', a],
        [call('f', { tags: ['a', 'b'], x: 1 }), a],
      ]),
    ).toEqual([1, 0, 0, 0, 1, 0, 1]);
  });
});
