import type { StagingPurpose, StagingStatus } from '../../core/vocabulary.js';
import type { Queryable } from '../tx.js';
import { insertRows } from './unnest.js';

export interface StagingBatch {
  id: string;
  purpose: StagingPurpose;
  target: string;
  source: string;
  format: string;
  status: StagingStatus;
  imported: number;
  duplicates: number;
  rejected: number;
  consumedBy: number | null;
}

/** The row as PostgreSQL returns it (bigint ids as text). */
type StagingBatchRow = Omit<StagingBatch, 'consumedBy'> & { consumed_by: string | null };

const toBatch = (row: StagingBatchRow): StagingBatch => ({
  id: row.id,
  purpose: row.purpose,
  target: row.target,
  source: row.source,
  format: row.format,
  status: row.status,
  imported: row.imported,
  duplicates: row.duplicates,
  rejected: row.rejected,
  consumedBy: row.consumed_by === null ? null : Number(row.consumed_by),
});

/** Opens a staging batch (idempotent by id: reopening returns the existing batch). */
export async function openStagingBatch(
  q: Queryable,
  input: { id: string; purpose: StagingPurpose; target: string; source: string; format: string },
): Promise<StagingBatch> {
  await q.query(
    `INSERT INTO staging_batches (id, purpose, target, source, format) VALUES ($1::text, $2::text, $3::text, $4::text, $5::text)
     ON CONFLICT (id) DO NOTHING`,
    [input.id, input.purpose, input.target, input.source, input.format],
  );
  return getStagingBatch(q, input.id);
}

export async function getStagingBatch(q: Queryable, id: string): Promise<StagingBatch> {
  const { rows } = await q.query<StagingBatchRow>('SELECT * FROM staging_batches WHERE id = $1::text', [id]);
  if (!rows[0]) throw new Error(`no staging batch ${id}`);
  return toBatch(rows[0]);
}

/**
 * Adds accepted samples (already written to `samples`) to a batch with the line they came from. Returns how many were
 * new to the batch; the rest are duplicates within the file (same content on two lines).
 */
export function addStagingMembers(
  q: Queryable,
  batchId: string,
  members: readonly { sampleId: string; line: number }[],
): Promise<number> {
  return insertRows(q, 'staging_members', members, {
    shared: { batch_id: batchId },
    onConflict: 'ON CONFLICT (batch_id, sample_id) DO NOTHING',
  });
}

/** Records rejected lines as data, with the field and the reason (idempotent by line). */
export async function addStagingRejections(
  q: Queryable,
  batchId: string,
  rejections: readonly { line: number; field: string | null; reason: string }[],
): Promise<void> {
  if (rejections.length === 0) return;
  await q.query(
    `INSERT INTO staging_rejections (batch_id, line, field, reason)
     SELECT $1::text, line, field, reason FROM unnest($2::int[], $3::text[], $4::text[]) AS u(line, field, reason)
     ON CONFLICT (batch_id, line) DO NOTHING`,
    [batchId, rejections.map((r) => r.line), rejections.map((r) => r.field), rejections.map((r) => r.reason)],
  );
}

/** Marks a fully loaded batch ready, with its final counts. */
export async function markStagingReady(
  q: Queryable,
  batchId: string,
  counts: { imported: number; duplicates: number; rejected: number },
): Promise<void> {
  await q.query(
    `UPDATE staging_batches SET status = 'ready', imported = $2::int, duplicates = $3::int, rejected = $4::int
     WHERE id = $1::text AND status = 'loading'`,
    [batchId, counts.imported, counts.duplicates, counts.rejected],
  );
}

/**
 * Marks a ready batch consumed by a dataset version. Returns false when another version took it already: a batch is
 * merged once, whatever the retries.
 */
export async function consumeStagingBatch(q: Queryable, batchId: string, versionId: number): Promise<boolean> {
  const result = await q.query(
    `UPDATE staging_batches SET status = 'consumed', consumed_by = $2::bigint
     WHERE id = $1::text AND (status = 'ready' OR (status = 'consumed' AND consumed_by = $2::bigint))`,
    [batchId, versionId],
  );
  return (result.rowCount ?? 0) > 0;
}

export async function getStagingRejections(
  q: Queryable,
  batchId: string,
): Promise<{ line: number; field: string | null; reason: string }[]> {
  const { rows } = await q.query<{ line: number; field: string | null; reason: string }>(
    'SELECT line, field, reason FROM staging_rejections WHERE batch_id = $1::text ORDER BY line',
    [batchId],
  );
  return rows;
}
