import type pg from 'pg';
import { consumeStagingBatch } from '../../db/queries/staging.js';
import {
  addMembersFromStaging,
  countStagedNotIn,
  createVersion,
  type DatasetVersion,
  freezeVersion,
  inheritMembers,
  findVersionByKey,
  latestVersion,
} from '../../db/queries/versions.js';

/**
 * Turns a staged import into the dataset's next version: the latest version's members plus the batch's samples (role
 * `seed`), frozen. When the batch adds nothing the dataset lacks, no version is made. Idempotent by batch id: a retry
 * after a crash continues the same version.
 */
export async function versionFromImport(pool: pg.Pool, input: { dataset: string; batchId: string; note?: string }): Promise<{ version?: DatasetVersion; added: number }> {
  const idempotencyKey = `staging:${input.batchId}`;
  const existing = await findVersionByKey(pool, idempotencyKey);
  const parentId = existing ? existing.parentId : ((await latestVersion(pool, input.dataset))?.id ?? null);
  const added = await countStagedNotIn(pool, { batchId: input.batchId, versionId: parentId });
  if (!existing && added === 0) return { added: 0 };
  const version = existing ?? (await createVersion(pool, { dataset: input.dataset, idempotencyKey, parentId, note: input.note ?? null }));
  if (version.status === 'open') {
    if (parentId !== null) await inheritMembers(pool, { versionId: version.id, fromVersionId: parentId });
    await addMembersFromStaging(pool, { versionId: version.id, batchId: input.batchId, role: 'seed' });
  }
  const frozen = await freezeVersion(pool, version.id);
  await consumeStagingBatch(pool, input.batchId, frozen.id);
  return { version: frozen, added };
}
