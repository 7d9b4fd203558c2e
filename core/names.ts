import { z } from 'zod';
import { LOOP_NAME_PATTERN } from './constants.js';

/**
 * The rule for loop and dataset names, said once. Both become keys other systems see (workflow ids, search attribute
 * values, `dataset@n` references, file names of exports), so they stay short, printable and free of slashes, spaces
 * and quotes. The database enforces the same pattern with CHECKs (db/migrations/0001 loops.name, 0002
 * dataset_versions.dataset; test/unit/names.test.ts keeps them equal); checking here first gives a person the rule
 * before any file is read, instead of a constraint name after the whole file was stored.
 */
export const NAME_RULE =
  'lowercase letters, digits, ".", "_" and "-", starting with a letter or digit; at most 63 characters';

/**
 * Dataset names follow the loop names' rule because a loop's datasets are named after the loop: any loop name must
 * be a valid dataset name.
 */
export const DATASET_NAME_PATTERN = LOOP_NAME_PATTERN;

/** A loop's name: it becomes workflow ids, dataset names and search attribute values. */
export const LoopName = z.string().regex(LOOP_NAME_PATTERN, NAME_RULE);

/** A dataset's name (`looptool data import --name`), without the `@n` of a version reference. */
export const DatasetName = z.string().regex(DATASET_NAME_PATTERN, NAME_RULE);

export type NameKind = 'loop' | 'dataset';

/** Why `name` is not a valid loop or dataset name, with the rule; undefined when it is valid. */
export function nameProblem(kind: NameKind, name: string): string | undefined {
  const pattern = kind === 'loop' ? LOOP_NAME_PATTERN : DATASET_NAME_PATTERN;
  if (pattern.test(name)) return undefined;
  // JSON quoting shows invisible and control characters (a newline, an escape) instead of printing them raw.
  return `invalid ${kind} name ${JSON.stringify(name)}: use ${NAME_RULE}`;
}

/**
 * A dataset reference as loop configs and `data show` take it: a dataset name (its latest version) or `dataset@n`.
 * Returns why it is not one, or undefined.
 */
export function datasetRefProblem(ref: string): string | undefined {
  const at = /^(.*)@(\d+)$/.exec(ref);
  return nameProblem('dataset', at ? at[1]! : ref);
}
