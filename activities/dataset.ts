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
import {
  addErrorSeeds,
  addExpansions,
  addHighPerplexity,
  addInjected,
  addSeedNew,
  countMembers,
  createLoopVersion,
  drawInitialMembers,
  loopVersionKey,
  removeInjected,
} from '../db/queries/assembly.js';
import { planStage } from '../db/queries/stage-batches.js';
import { consumeStagingBatch } from '../db/queries/staging.js';
import {
  type DatasetVersion,
  DatasetVersionError,
  findVersionByKey,
  freezeVersion,
  getVersion,
} from '../db/queries/versions.js';
import { withTransaction } from '../db/tx.js';
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
    ): Promise<AssembleResult & { seedVersionId: number; seedPoolSize: number }> {
      const input = parseInput(CreateInitialVersionInput, rawInput, 'createInitialVersion');
      const seedVersionId = await resolveVersionId(deps.pool, input.seedDataset);
      const seedVersion = await getVersion(deps.pool, seedVersionId);
      const poolSize = seedVersion.memberCount ?? 0;
      if (poolSize === 0)
        throw ApplicationFailure.nonRetryable(`seed dataset ${seedVersion.ref} is empty`, ErrorType.DataNotFound);
      const size = Math.min(poolSize, input.size ?? Math.round(poolSize * 0.65));
      const version = await buildVersion(
        deps.pool,
        { loopName: input.loopName, iteration: 1, parentId: seedVersionId, configHash: input.configHash },
        (tx, versionId) => drawInitialMembers(tx, { versionId, seedVersionId, seed: input.seed, size }),
      );
      return { ...toResult(version), seedVersionId, seedPoolSize: poolSize };
    },

    /**
     * D_{j+1} by Eq. 5 within a fixed budget: all error seeds (PRED_WRONG with their labels as `error_seed`,
     * LABEL_WRONG as their corrected samples, `relabeled`), then fresh seed data never used by this loop (`seed_new`,
     * the halving schedule's count), then accepted expansions (`expanded`) up to the budget, then the highest-perplexity
     * mastered samples of D_j (`high_ppl`) to fill it; injected batches come on top (`injected`) and are consumed once.
     * One transaction, so a crash leaves no half version; idempotent by (loop, j+1).
     */
    async assembleNextVersion(
      rawInput: AssembleNextVersionInput,
    ): Promise<AssembleResult & { skippedInjections: string[] }> {
      const input = parseInput(AssembleNextVersionInput, rawInput, 'assembleNextVersion');
      const skippedInjections: string[] = [];
      const loop = { loopName: input.loopName, iteration: input.iteration };
      const version = await buildVersion(
        deps.pool,
        {
          loopName: input.loopName,
          iteration: input.iteration + 1,
          parentId: input.currentVersionId,
          configHash: input.configHash,
        },
        async (tx, versionId) => {
          const room = async () => Math.max(0, input.budget - (await countMembers(tx, versionId)));
          await addErrorSeeds(tx, { versionId, ...loop });
          await addSeedNew(tx, {
            versionId,
            loopName: input.loopName,
            seedVersionId: input.seedVersionId,
            seed: input.seed,
            limit: Math.min(input.seedNewCount, await room()),
          });
          await addExpansions(tx, { versionId, ...loop, limit: await room() });
          await addHighPerplexity(tx, {
            versionId,
            ...loop,
            currentVersionId: input.currentVersionId,
            limit: await room(),
          });
          for (const batchId of input.injectBatchIds) {
            await addInjected(tx, { versionId, batchId });
            // A batch that is not ready, or was merged into another version, adds nothing: refuse the whole batch
            // rather than fail the loop.
            if (!(await consumeStagingBatch(tx, batchId, versionId))) {
              await removeInjected(tx, { versionId, batchId });
              skippedInjections.push(batchId);
            }
          }
        },
      );
      return { ...toResult(version), skippedInjections };
    },

    /** Plans a stage's batches (seq ranges of about `size` rows, stored once) and returns how many there are. */
    async planStageBatches(rawInput: PlanStageBatchesInput): Promise<number> {
      return planStage(deps.pool, parseInput(PlanStageBatchesInput, rawInput, 'planStageBatches'));
    },
  };
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
