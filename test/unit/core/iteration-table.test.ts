import { describe, expect, test } from 'vitest';
import type { IterationSummary } from '../../../core/inputs.js';
import { iterationTable } from '../../../core/iteration-table.js';

const iteration = (j: number, extra: Partial<IterationSummary> = {}): IterationSummary => ({
  iteration: j,
  dataset: `loop@${j}`,
  countsByRole: { seed_new: 10 },
  ...extra,
});

describe('the iteration table (CLI and UI)', () => {
  test('shows the too-long count and the held-out slice accuracy, base model included, once there are any', () => {
    const table = iterationTable({
      baselineAccuracy: 0.5,
      baselineHeldOutAccuracy: 0.25,
      history: [
        iteration(1, { probe: { probed: 10, match: 6, too_long: 2 }, heldOutAccuracy: 0.5, accuracy: 0.6 }),
        iteration(2, { heldOutAccuracy: 0.75, accuracy: 0.7 }),
      ],
    });
    const column = (name: string) => table.rows.map((row) => row[table.headers.indexOf(name)]);
    expect(table.headers.slice(-3)).toEqual(['too long', 'held-out', 'accuracy']);
    expect(column('too long')).toEqual(['', 2, 0]);
    expect(column('held-out')).toEqual(['25.0%', '50.0%', '75.0%']);
    expect(column('accuracy')).toEqual(['50.0%', '60.0%', '70.0%']);
  });

  test('leaves both columns out when no prompt was too long and no slice was scored', () => {
    const table = iterationTable({ history: [iteration(1, { probe: { probed: 10, match: 10 } })] });
    expect(table.headers).not.toContain('too long');
    expect(table.headers).not.toContain('held-out');
  });
});
