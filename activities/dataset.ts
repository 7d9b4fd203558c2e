import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import { ErrorType } from '../core/errors.js';
import { consumeStagingBatch } from '../db/queries/staging.js';
import { type BatchedStage, planStage } from '../db/queries/stages.js';
import { type DatasetVersion, DatasetVersionError, findVersionByKey, freezeVersion, getVersion } from '../db/queries/versions.js';
import { withTransaction } from '../db/tx.js';
import type { ActivityDeps } from './deps.js';

export interface AssembleResult {
  versionId: number;
  ref: string;
  memberCount: number;
  countsByRole: Partial<Record<string, number>>;
}

const toResult = (v: DatasetVersion): AssembleResult => ({ versionId: v.id, ref: v.ref, memberCount: v.memberCount ?? 0, countsByRole: v.countsByRole ?? {} });

/** The version key of D_j of a loop: assembling it again (a retry, a replay) finds the same version. */
export const loopVersionKey = (loopName: string, iteration: number) => `loop:${loopName}:iter:${iteration}`;

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
    async createInitialVersion(input: { loopName: string; seedDataset: string; size?: number; seed: number; configHash: string }): Promise<AssembleResult & { seedVersionId: number; seedPoolSize: number }> {
      const seedVersionId = await resolveVersionId(deps.pool, input.seedDataset);
      const seedVersion = await getVersion(deps.pool, seedVersionId);
      const poolSize = seedVersion.memberCount ?? 0;
      if (poolSize === 0) throw ApplicationFailure.nonRetryable(`seed dataset ${seedVersion.ref} is empty`, ErrorType.DataNotFound);
      const size = Math.min(poolSize, input.size ?? Math.round(poolSize * 0.65));
      const version = await buildVersion(deps.pool, { loopName: input.loopName, iteration: 1, parentId: seedVersionId, configHash: input.configHash }, async (tx, versionId) => {
        await tx.query(
          `INSERT INTO dataset_members (version_id, sample_seq, role)
           SELECT $1::bigint, m.sample_seq, 'seed_new' FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
           WHERE m.version_id = $2::bigint ORDER BY md5($3::text || s.id), s.id LIMIT $4::int`,
          [versionId, seedVersionId, String(input.seed), size],
        );
      });
      return { ...toResult(version), seedVersionId, seedPoolSize: poolSize };
    },

    /**
     * D_{j+1} by Eq. 5 within a fixed budget: all error seeds (PRED_WRONG with their labels as `error_seed`,
     * LABEL_WRONG as their corrected samples, `relabeled`), then fresh seed data never used by this loop (`seed_new`,
     * the halving schedule's count), then accepted expansions (`expanded`) up to the budget, then the highest-perplexity
     * mastered samples of D_j (`high_ppl`; BOTH_CORRECT counts as mastered, the paper's recommended reading) to fill it;
     * injected batches come on top (`injected`) and are consumed once. One transaction, so a crash leaves no half
     * version; idempotent by (loop, j+1).
     */
    async assembleNextVersion(input: {
      loopName: string;
      iteration: number;
      currentVersionId: number;
      seedVersionId: number;
      budget: number;
      seedNewCount: number;
      seed: number;
      configHash: string;
      injectBatchIds: string[];
    }): Promise<AssembleResult & { skippedInjections: string[] }> {
      const next = input.iteration + 1;
      const skippedInjections: string[] = [];
      const version = await buildVersion(
        deps.pool,
        { loopName: input.loopName, iteration: next, parentId: input.currentVersionId, configHash: input.configHash },
        async (tx, versionId) => {
          const count = async () => Number((await tx.query<{ n: string }>('SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint', [versionId])).rows[0]!.n);
          const args = [versionId, input.loopName, input.iteration];
          await tx.query(
            `INSERT INTO dataset_members (version_id, sample_seq, role)
             SELECT $1::bigint, s.seq, CASE j.verdict WHEN 'label_wrong' THEN 'relabeled' ELSE 'error_seed' END
             FROM judgements j JOIN samples s ON s.id = CASE j.verdict WHEN 'label_wrong' THEN j.corrected_sample_id ELSE j.sample_id END
             WHERE j.loop_name = $2::text AND j.iteration = $3::int AND j.consensus
               AND (j.verdict = 'pred_wrong' OR (j.verdict = 'label_wrong' AND j.corrected_sample_id IS NOT NULL))
             ORDER BY s.seq ON CONFLICT DO NOTHING`,
            args,
          );
          await tx.query(
            `INSERT INTO dataset_members (version_id, sample_seq, role)
             SELECT $1::bigint, m.sample_seq, 'seed_new' FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
             WHERE m.version_id = $3::bigint
               AND NOT EXISTS (SELECT 1 FROM dataset_members used JOIN dataset_versions v ON v.id = used.version_id
                               WHERE v.loop_name = $2::text AND used.sample_seq = m.sample_seq)
             ORDER BY md5($4::text || s.id), s.id LIMIT $5::int
             ON CONFLICT DO NOTHING`,
            [versionId, input.loopName, input.seedVersionId, String(input.seed), Math.max(0, Math.min(input.seedNewCount, input.budget - (await count())))],
          );
          await tx.query(
            `INSERT INTO dataset_members (version_id, sample_seq, role)
             SELECT $1::bigint, s.seq, 'expanded' FROM expansions e JOIN samples s ON s.id = e.sample_id
             WHERE e.loop_name = $2::text AND e.iteration = $3::int AND e.status = 'accepted'
             ORDER BY s.id LIMIT $4::int ON CONFLICT DO NOTHING`,
            [...args, Math.max(0, input.budget - (await count()))],
          );
          await tx.query(
            `INSERT INTO dataset_members (version_id, sample_seq, role)
             SELECT $1::bigint, m.sample_seq, 'high_ppl'
             FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
             JOIN probe_results p ON p.loop_name = $2::text AND p.iteration = $3::int AND p.sample_id = s.id
             LEFT JOIN judgements j ON j.loop_name = p.loop_name AND j.iteration = p.iteration AND j.sample_id = p.sample_id
             WHERE m.version_id = $4::bigint AND (p.outcome = 'match' OR (j.verdict = 'both_correct' AND j.consensus))
               AND NOT EXISTS (SELECT 1 FROM dataset_members x WHERE x.version_id = $1::bigint AND x.sample_seq = m.sample_seq)
             ORDER BY p.perplexity DESC NULLS LAST, s.id LIMIT $5::int
             ON CONFLICT DO NOTHING`,
            [...args, input.currentVersionId, Math.max(0, input.budget - (await count()))],
          );
          for (const batchId of input.injectBatchIds) {
            await tx.query(
              `INSERT INTO dataset_members (version_id, sample_seq, role)
               SELECT $1::bigint, s.seq, 'injected' FROM staging_members sm JOIN samples s ON s.id = sm.sample_id
               WHERE sm.batch_id = $2::text ORDER BY s.seq ON CONFLICT DO NOTHING`,
              [versionId, batchId],
            );
            // A batch that is not ready, or was merged into another version, adds nothing: inserting it was a no-op
            // only if it had no members, so undo by refusing the whole batch rather than failing the loop.
            if (!(await consumeStagingBatch(tx, batchId, versionId))) {
              await tx.query(
                `DELETE FROM dataset_members m USING staging_members sm JOIN samples s ON s.id = sm.sample_id
                 WHERE m.version_id = $1::bigint AND m.sample_seq = s.seq AND m.role = 'injected' AND sm.batch_id = $2::text`,
                [versionId, batchId],
              );
              skippedInjections.push(batchId);
            }
          }
        },
      );
      return { ...toResult(version), skippedInjections };
    },

    /** Plans a stage's batches (seq ranges of about `size` rows, stored once) and returns how many there are. */
    async planStageBatches(input: { loopName: string; iteration: number; stage: BatchedStage; versionId?: number; size: number }): Promise<number> {
      return planStage(deps.pool, input);
    },
  };
}

/**
 * Creates the loop's version for `iteration` (dataset = loop name), fills it with `fill` and freezes it, all in one
 * transaction; when the version exists already (a retried activity), returns it untouched.
 */
async function buildVersion(
  pool: pg.Pool,
  input: { loopName: string; iteration: number; parentId: number; configHash: string },
  fill: (tx: pg.PoolClient, versionId: number) => Promise<void>,
): Promise<DatasetVersion> {
  const key = loopVersionKey(input.loopName, input.iteration);
  const existing = await findVersionByKey(pool, key);
  if (existing?.status === 'frozen') return existing;
  const versionId = await withTransaction(pool, async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1::text))', [`dataset:${input.loopName}`]);
    const again = await tx.query<{ id: string }>('SELECT id FROM dataset_versions WHERE idempotency_key = $1::text', [key]);
    if (again.rows[0]) return Number(again.rows[0].id);
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO dataset_versions (dataset, version, parent_id, loop_name, iteration, config_hash, idempotency_key, note)
       SELECT $1::text, coalesce(max(version), 0) + 1, $2::bigint, $1::text, $3::int, $4::text, $5::text, $6::text
       FROM dataset_versions WHERE dataset = $1::text RETURNING id`,
      [input.loopName, input.parentId, input.iteration, input.configHash, key, `D_${input.iteration} of loop ${input.loopName}`],
    );
    const id = Number(rows[0]!.id);
    await fill(tx, id);
    return id;
  });
  return freezeVersion(pool, versionId);
}
