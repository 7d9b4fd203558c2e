import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { LOOP_NAME_PATTERN } from '../../core/constants.js';
import { DATASET_NAME_PATTERN, datasetRefProblem, nameProblem, NAME_RULE } from '../../core/names.js';
import { loadMigrations } from '../../db/migrate.js';

const BAD_NAMES = JSON.parse(
  readFileSync(fileURLToPath(new URL('../fixtures/bad/names.json', import.meta.url)), 'utf8'),
) as { loop: string[]; dataset: string[] };

/** The regex of `CHECK (column ~ '…')` on a table's column, as the migrations write it. */
function checkRegex(table: string, column: string): string {
  for (const migration of loadMigrations()) {
    const body = new RegExp(`CREATE TABLE ${table} \\(([\\s\\S]*?)\\n\\);`).exec(migration.sql)?.[1];
    const found = body && new RegExp(`\\b${column}\\b[^\\n]*CHECK \\(${column} ~ '([^']*)'\\)`).exec(body);
    if (found) return found[1]!;
  }
  throw new Error(`no CHECK on ${table}.${column}`);
}

describe('loop and dataset names: one rule, in core/names.ts', () => {
  test('the database CHECKs enforce the same patterns as core/', () => {
    expect(checkRegex('loops', 'name')).toBe(LOOP_NAME_PATTERN.source);
    expect(checkRegex('dataset_versions', 'dataset')).toBe(DATASET_NAME_PATTERN.source);
  });

  test('every bad name of the fixture is refused with the rule, quoted so invisible characters show', () => {
    for (const [kind, names] of Object.entries(BAD_NAMES) as ['loop' | 'dataset', string[]][]) {
      for (const name of names) {
        const problem = nameProblem(kind, name);
        expect(problem, `${kind} ${JSON.stringify(name)}`).toBe(
          `invalid ${kind} name ${JSON.stringify(name)}: use ${NAME_RULE}`,
        );
        // Control characters are escaped in the message, never printed raw.
        expect([...problem!].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
      }
    }
  });

  test('good names pass; a dataset reference may carry @n', () => {
    for (const name of ['seed', 'bfcl-parallel', 'a', 'x.y_z-1', 'z'.repeat(63), '123'])
      expect(nameProblem('dataset', name)).toBeUndefined();
    expect(datasetRefProblem('seed@3')).toBeUndefined();
    expect(datasetRefProblem('seed')).toBeUndefined();
    expect(datasetRefProblem('Seed@3')).toMatch(/invalid dataset name "Seed"/);
    expect(datasetRefProblem('../seed@1')).toMatch(/invalid dataset name/);
  });
});
