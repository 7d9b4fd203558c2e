import { describe, expect, test } from 'vitest';
import { ITERATION_TABLE_ROLES, MEMBER_ROLE_DISPLAY_ORDER } from '../../core/iteration-table.js';
import {
  BatchedStage,
  CallPurpose,
  ExpansionStatus,
  JudgeVerdict,
  MemberRole,
  ModelRole,
  OriginKind,
  ProbeOutcome,
  StagingPurpose,
  StagingStatus,
  TrainingRunStatus,
  TrainingWeights,
  VersionStatus,
} from '../../core/vocabulary.js';
import { loadMigrations } from '../../db/migrate.js';

/** The enum each CHECK (column IN (…)) of the migrations must equal, by table and column. */
const ENUM_OF: Record<string, readonly string[]> = {
  'sample_origins.kind': OriginKind.options,
  'dataset_versions.status': VersionStatus.options,
  'dataset_members.role': MemberRole.options,
  'staging_batches.purpose': StagingPurpose.options,
  'staging_batches.status': StagingStatus.options,
  'probe_results.outcome': ProbeOutcome.options,
  'judgements.verdict': JudgeVerdict.options,
  'expansions.status': ExpansionStatus.options,
  'training_runs.status': TrainingRunStatus.options,
  'model_calls.stage': CallPurpose.options,
  'model_calls.role': ModelRole.options,
  'stage_batches.stage': BatchedStage.options,
  'deployments.kind': TrainingWeights.options,
};

/** Every `CHECK (column IN ('a', 'b', …))` of every migration, as `table.column` → values (a later one wins). */
function checkLists(): Map<string, string[]> {
  const lists = new Map<string, string[]>();
  for (const migration of loadMigrations()) {
    for (const table of migration.sql.matchAll(/CREATE TABLE (\w+) \(([\s\S]*?)\n\);/g)) {
      for (const check of table[2]!.matchAll(/CHECK \((\w+) IN \(([^)]*)\)\)/g)) {
        lists.set(
          `${table[1]}.${check[1]}`,
          [...check[2]!.matchAll(/'([^']*)'/g)].map((m) => m[1]!),
        );
      }
    }
    // A later migration that changes a list replaces the column's CHECK (0005: staging_batches.status).
    for (const check of migration.sql.matchAll(
      /ALTER TABLE (\w+) ADD CONSTRAINT \w+\s+CHECK \((\w+) IN \(([^)]*)\)\)/g,
    )) {
      lists.set(
        `${check[1]}.${check[2]}`,
        [...check[3]!.matchAll(/'([^']*)'/g)].map((m) => m[1]!),
      );
    }
  }
  return lists;
}

describe('one vocabulary: core/vocabulary.ts and the database agree', () => {
  test('every CHECK list in db/migrations equals its enum in core/vocabulary.ts, and every enum with a column has one', () => {
    const lists = checkLists();
    expect([...lists.keys()].sort()).toEqual(Object.keys(ENUM_OF).sort());
    for (const [column, values] of lists) expect([...values].sort(), column).toEqual([...ENUM_OF[column]!].sort());
  });

  test('the display order of member roles lists every role once; the iteration table folds imported seed data into seed_new', () => {
    expect([...MEMBER_ROLE_DISPLAY_ORDER].sort()).toEqual([...MemberRole.options].sort());
    expect(ITERATION_TABLE_ROLES).toEqual(['error_seed', 'relabeled', 'expanded', 'high_ppl', 'seed_new', 'injected']);
  });
});
