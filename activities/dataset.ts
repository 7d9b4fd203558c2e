import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import { ErrorType } from '../core/errors.js';
import {
  AssembleNextVersionInput,
  type CountsByRole,
  CreateInitialVersionInput,
  parseInput,
  PlanStageBatchesInput,
} from '../core/inputs.js';
import { type CompositionPlan, planComposition } from '../core/stages/composition.js';
import {
  addInjected,
  addPart,
  countMembers,
  countPart,
  createLoopVersion,
  drawInitialMembers,
  errorSeedsPart,
  type Exclusion,
  expansionsPart,
  highPerplexityPart,
  loopVersionKey,
  removeInjected,
  seedNewPart,
} from '../db/queries/assembly.js';
import { DecontaminationIncompleteError, removeContaminatedMembers } from '../db/queries/decontam.js';
import { planStage } from '../db/queries/stage-batches.js';
import { consumeStagingBatch } from '../db/queries/staging.js';
import {
  type DatasetVersion,
  DatasetVersionError,
  findVersionByKey,
  freezeVersion,
  getVersion,
} from '../db/queries/versions.js';
import { type Queryable, withTransaction } from '../db/tx.js';
import type { ActivityDeps } from './deps.js';

export interface AssembleResult {
  versionId: number;
  ref: string;
  memberCount: number;
  countsByRole: CountsByRole;
}

const toResult = (v: DatasetVersion): AssembleResult => ({
  versionId: v.id,
  ref: v.ref,
  memberCount: v.memberCount ?? 0,
  countsByRole: v.countsByRole ?? {},
});

async function resolveVersionId(pool: pg.Pool, ref: string): Promise<number> {
  try {
    return (await getVersion(pool, ref)).id;
  } catch (err) {
    if (err instanceof DatasetVersionError) throw ApplicationFailure.nonRetryable(err.message, ErrorType.DataNotFound);
    throw err;
  }
}

/**
 * Dataset activities: building each round's dataset version in PostgreSQL with set-based statements (never a sample
 * list through the workflow), and planning stage batches as seq ranges.
 */
export function createDatasetActivities(deps: ActivityDeps) {
  return {
    /**
     * D_1: `size` samples drawn from the seed pool (role `seed_new`, as in the paper's Table 3), in an order fixed by
     * the loop's seed. Idempotent by (loop, 1).
     */
    async createInitialVersion(
      rawInput: CreateInitialVersionInput,
    ): Promise<AssembleResult & { seedVersionId: number; seedPoolSize: number; heldOutSize: number }> {
      const input = parseInput(CreateInitialVersionInput, rawInput, 'createInitialVersion');
      const seedVersionId = await resolveVersionId(deps.pool, input.seedDataset);
      const seedVersion = await getVersion(deps.pool, seedVersionId);
      const poolSize = seedVersion.memberCount ?? 0;
      if (poolSize === 0)
        throw ApplicationFailure.nonRetryable(`seed dataset ${seedVersion.ref} is empty`, ErrorType.DataNotFound);
      const heldOutSize = heldOutSizeOf(poolSize, input.heldOutFraction);
      const size = Math.min(poolSize - heldOutSize, input.size ?? Math.round(poolSize * 0.65));
      if (size <= 0)
        throw ApplicationFailure.nonRetryable(
          `seed dataset ${seedVersion.ref} has ${poolSize} samples, all held out (data.heldOutFraction ` +
            `${input.heldOutFraction}): nothing is left to train on`,
          ErrorType.ConfigInvalid,
        );
      const version = await buildVersion(
        deps.pool,
        { loopName: input.loopName, iteration: 1, parentId: seedVersionId, configHash: input.configHash },
        async (tx, versionId) => {
          await drawInitialMembers(tx, {
            versionId,
            seedVersionId,
            seed: input.seed,
            size,
            heldOutSize,
            ...(input.exclusion ? { exclusion: input.exclusion } : {}),
          });
          if (input.exclusion) await leaveOutContaminated(tx, versionId, input.exclusion);
        },
      );
      return { ...toResult(version), seedVersionId, seedPoolSize: poolSize, heldOutSize };
    },

    /**
     * D_{j+1} by Eq. 5 within a fixed budget, as shares of it (core/stages/composition.ts): injected batches first
     * (merged whole, consumed once), then error seeds up to their cap (PRED_WRONG with their labels as `error_seed`,
     * LABEL_WRONG as their corrected samples, `relabeled`), fresh seed data never used by this loop by the halving
     * schedule (`seed_new`), accepted expansions balanced per seed into the room above the high-PPL floor
     * (`expanded`), and the highest-perplexity mastered samples of D_j into the rest (`high_ppl`). The parts are
     * counted first and the plan decides how many of each; one transaction, so a crash leaves no half version;
     * idempotent by (loop, j+1).
     */
    async assembleNextVersion(
      rawInput: AssembleNextVersionInput,
    ): Promise<AssembleResult & { skippedInjections: string[]; plan?: CompositionPlan }> {
      const input = parseInput(AssembleNextVersionInput, rawInput, 'assembleNextVersion');
      const skippedInjections: string[] = [];
      let plan: CompositionPlan | undefined;
      const loop = { loopName: input.loopName, iteration: input.iteration, seed: input.seed };
      const seedPool = await getVersion(deps.pool, input.seedVersionId);
      const heldOutSize = heldOutSizeOf(seedPool.memberCount ?? 0, input.heldOutFraction);
      const version = await buildVersion(
        deps.pool,
        {
          loopName: input.loopName,
          iteration: input.iteration + 1,
          parentId: input.currentVersionId,
          configHash: input.configHash,
        },
        async (tx, versionId) => {
          for (const batchId of input.injectBatchIds) {
            await addInjected(tx, { versionId, batchId });
            // A batch that is not ready, or was merged into another version, adds nothing: refuse the whole batch
            // rather than fail the loop.
            if (!(await consumeStagingBatch(tx, batchId, versionId))) {
              await removeInjected(tx, { versionId, batchId });
              skippedInjections.push(batchId);
            }
          }
          const { exclusion } = input;
          if (exclusion) await leaveOutContaminated(tx, versionId, exclusion);
          const excluded = exclusion ? { exclusion } : {};
          const parts = {
            errorSeeds: errorSeedsPart({ versionId, ...loop, ...excluded }),
            seedNew: seedNewPart({
              versionId,
              loopName: input.loopName,
              seedVersionId: input.seedVersionId,
              seed: input.seed,
              heldOutSize,
              ...excluded,
            }),
            expansions: expansionsPart({ versionId, ...loop, ...excluded }),
            highPpl: highPerplexityPart({
              versionId,
              ...loop,
              currentVersionId: input.currentVersionId,
              ...excluded,
            }),
          };
          plan = planComposition({
            budget: input.budget,
            iteration: input.iteration,
            shares: input.shares,
            available: {
              injected: await countMembers(tx, versionId),
              errorSeeds: await countPart(tx, parts.errorSeeds),
              seedNew: await countPart(tx, parts.seedNew),
              expansions: await countPart(tx, parts.expansions),
              mastered: await countPart(tx, parts.highPpl),
            },
          });
          // The parts are disjoint (a sample of D_j is mastered or an error, never both; seed-new was never used;
          // corrected samples and expansions are new) and each skips members already placed, so each adds what the
          // plan gave it (fewer only if an expansion happens to equal a seed-pool sample).
          await addPart(tx, parts.errorSeeds, plan.errorSeeds);
          await addPart(tx, parts.seedNew, plan.seedNew);
          await addPart(tx, parts.expansions, plan.expansions);
          await addPart(tx, parts.highPpl, plan.highPpl);
          // A check that every member was checked: one that was not would be passed off as clean.
          if (exclusion) await leaveOutContaminated(tx, versionId, exclusion);
        },
      );
      return { ...toResult(version), skippedInjections, ...(plan ? { plan } : {}) };
    },

    /** Plans a stage's batches (seq ranges of about `size` rows, stored once) and returns how many there are. */
    async planStageBatches(rawInput: PlanStageBatchesInput): Promise<number> {
      return planStage(deps.pool, parseInput(PlanStageBatchesInput, rawInput, 'planStageBatches'));
    },
  };
}

/**
 * Takes the members that overlap the evaluation sets out of an open version (`decontamination.exclude`); a member that
 * was never checked fails the assembly, non-retryably (the candidates' check must come first).
 */
async function leaveOutContaminated(tx: Queryable, versionId: number, exclusion: Exclusion): Promise<void> {
  try {
    await removeContaminatedMembers(tx, { versionId, ...exclusion });
  } catch (err) {
    if (err instanceof DecontaminationIncompleteError)
      throw ApplicationFailure.nonRetryable(err.message, ErrorType.DataNotFound);
    throw err;
  }
}

/** The held-out slice of a seed pool: `fraction` of it, rounded, at least one sample when the fraction is not 0. */
export function heldOutSizeOf(poolSize: number, fraction: number): number {
  return fraction > 0 ? Math.min(poolSize, Math.max(1, Math.round(poolSize * fraction))) : 0;
}

/**
 * Creates the loop's version for `iteration`, fills it with `fill` and freezes it, all in one transaction; when the
 * version is frozen already (a retried activity), returns it untouched.
 */
async function buildVersion(
  pool: pg.Pool,
  input: { loopName: string; iteration: number; parentId: number; configHash: string },
  fill: (tx: pg.PoolClient, versionId: number) => Promise<void>,
): Promise<DatasetVersion> {
  const existing = await findVersionByKey(pool, loopVersionKey(input.loopName, input.iteration));
  if (existing?.status === 'frozen') return existing;
  const versionId = await withTransaction(pool, async (tx) => {
    const { id, created } = await createLoopVersion(tx, input);
    if (created) await fill(tx, id);
    return id;
  });
  return freezeVersion(pool, versionId);
}
