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
  /** The import process loading the batch (absent for batches from before migration 0005). */
  loaderHost: string | null;
  loaderPid: number | null;
  createdAt: Date;
  /** When the loader last wrote to it. */
  updatedAt: Date;
  /**
   * `updated_at` exactly, as PostgreSQL writes it: a conditional update compares with this, since a Date keeps only
   * milliseconds and the column has microseconds.
   */
  updatedToken: string;
  expiryReason: string | null;
}

/** The row as PostgreSQL returns it (bigint ids as text). */
interface StagingBatchRow {
  id: string;
  purpose: StagingPurpose;
  target: string;
  source: string;
  format: string;
  status: StagingStatus;
  imported: number;
  duplicates: number;
  rejected: number;
  consumed_by: string | null;
  loader_host: string | null;
  loader_pid: number | null;
  created_at: Date;
  updated_at: Date;
  updated_token: string;
  expiry_reason: string | null;
}

/** Every column, and `updated_at` as exact text (see {@link StagingBatch.updatedToken}). */
const BATCH_COLUMNS = '*, updated_at::text AS updated_token';

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
  loaderHost: row.loader_host,
  loaderPid: row.loader_pid,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  updatedToken: row.updated_token,
  expiryReason: row.expiry_reason,
});

/** The process that loads a batch: another process expires the batch once this one is gone. */
export interface StagingLoader {
  host: string;
  pid: number;
}

/** Opens a staging batch (idempotent by id: reopening returns the existing batch). */
export async function openStagingBatch(
  q: Queryable,
  input: {
    id: string;
    purpose: StagingPurpose;
    target: string;
    source: string;
    format: string;
    loader?: StagingLoader;
  },
): Promise<StagingBatch> {
  return (await claimStagingBatch(q, input)).batch;
}

/**
 * Opens a staging batch as `loader`'s. `created` is false when a batch with this id was there already (ids derived
 * from content, as injections' are, meet again): the caller decides what to do with it.
 */
export async function claimStagingBatch(
  q: Queryable,
  input: {
    id: string;
    purpose: StagingPurpose;
    target: string;
    source: string;
    format: string;
    loader?: StagingLoader;
  },
): Promise<{ batch: StagingBatch; created: boolean }> {
  const { rows } = await q.query<StagingBatchRow>(
    `INSERT INTO staging_batches (id, purpose, target, source, format, loader_host, loader_pid)
     VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::int)
     ON CONFLICT (id) DO NOTHING
     RETURNING ${BATCH_COLUMNS}`,
    [
      input.id,
      input.purpose,
      input.target,
      input.source,
      input.format,
      input.loader?.host ?? null,
      input.loader?.pid ?? null,
    ],
  );
  if (rows[0]) return { batch: toBatch(rows[0]), created: true };
  return { batch: await getStagingBatch(q, input.id), created: false };
}

/**
 * Takes over a batch whose load never finished (`loading` with its loader gone, or `expired`) to load it again from
 * the start: its members and rejections are cleared and it is `loader`'s. Only from the state the caller saw
 * (`seenUpdatedToken`), so of two processes retrying the same batch one wins and the other is told it lost (false).
 */
export async function reopenStagingBatch(
  q: Queryable,
  input: { id: string; source: string; loader: StagingLoader; seenUpdatedToken: string },
): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE staging_batches
     SET status = 'loading', imported = 0, duplicates = 0, rejected = 0, source = $2::text, loader_host = $3::text,
         loader_pid = $4::int, updated_at = now(), expired_at = NULL, expiry_reason = NULL
     WHERE id = $1::text AND status IN ('loading', 'expired') AND updated_at = $5::timestamptz`,
    [input.id, input.source, input.loader.host, input.loader.pid, input.seenUpdatedToken],
  );
  if ((rowCount ?? 0) === 0) return false;
  await q.query('DELETE FROM staging_members WHERE batch_id = $1::text', [input.id]);
  await q.query('DELETE FROM staging_rejections WHERE batch_id = $1::text', [input.id]);
  return true;
}

/** Records that the loader is alive and writing (with every flushed page), so its batch is not taken for abandoned. */
export async function touchStagingBatch(q: Queryable, batchId: string): Promise<void> {
  await q.query(`UPDATE staging_batches SET updated_at = now() WHERE id = $1::text AND status = 'loading'`, [batchId]);
}

/** Batches still `loading`, with how long since their loader last wrote (in the database's clock, not this host's). */
export async function listLoadingBatches(
  q: Queryable,
): Promise<
  { id: string; loaderHost: string | null; loaderPid: number | null; idleSeconds: number; updatedToken: string }[]
> {
  const { rows } = await q.query<{
    id: string;
    loader_host: string | null;
    loader_pid: number | null;
    idle_seconds: number;
    updated_token: string;
  }>(
    `SELECT id, loader_host, loader_pid, extract(epoch FROM now() - updated_at)::float8 AS idle_seconds,
       updated_at::text AS updated_token
     FROM staging_batches WHERE status = 'loading' ORDER BY updated_at`,
  );
  return rows.map((row) => ({
    id: row.id,
    loaderHost: row.loader_host,
    loaderPid: row.loader_pid,
    idleSeconds: row.idle_seconds,
    updatedToken: row.updated_token,
  }));
}

/**
 * Expires a `loading` batch whose loader is gone, unless it wrote since the caller looked (`seenUpdatedToken`): a
 * loader that is in fact alive keeps its batch. Returns whether it was expired.
 */
export async function expireStagingBatch(
  q: Queryable,
  input: { id: string; reason: string; seenUpdatedToken: string },
): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE staging_batches SET status = 'expired', expired_at = now(), expiry_reason = $2::text
     WHERE id = $1::text AND status = 'loading' AND updated_at = $3::timestamptz`,
    [input.id, input.reason, input.seenUpdatedToken],
  );
  return (rowCount ?? 0) > 0;
}

/** Expires a batch whose own import failed (the loader says so itself, so no liveness check is needed). */
export async function abandonStagingBatch(q: Queryable, batchId: string, reason: string): Promise<void> {
  await q.query(
    `UPDATE staging_batches SET status = 'expired', expired_at = now(), expiry_reason = $2::text
     WHERE id = $1::text AND status = 'loading'`,
    [batchId, reason],
  );
}

export interface StagingBatchListing extends StagingBatch {
  /** Samples and rejected lines stored so far (for a batch still loading, its counts are set only when it is ready). */
  members: number;
  rejectedLines: number;
  ageSeconds: number;
}

/** Staging batches, newest first, with live counts and age (database clock). */
export async function listStagingBatches(
  q: Queryable,
  filter: { status?: StagingStatus; purpose?: StagingPurpose; limit?: number } = {},
): Promise<StagingBatchListing[]> {
  const { rows } = await q.query<StagingBatchRow & { members: string; rejected_lines: string; age_seconds: number }>(
    `SELECT b.*, b.updated_at::text AS updated_token,
       (SELECT count(*) FROM staging_members m WHERE m.batch_id = b.id) AS members,
       (SELECT count(*) FROM staging_rejections r WHERE r.batch_id = b.id) AS rejected_lines,
       extract(epoch FROM now() - b.created_at)::float8 AS age_seconds
     FROM staging_batches b
     WHERE ($1::text IS NULL OR b.status = $1::text) AND ($2::text IS NULL OR b.purpose = $2::text)
     ORDER BY b.created_at DESC, b.id
     LIMIT $3::int`,
    [filter.status ?? null, filter.purpose ?? null, filter.limit ?? 100],
  );
  return rows.map((row) => ({
    ...toBatch(row),
    members: Number(row.members),
    rejectedLines: Number(row.rejected_lines),
    ageSeconds: row.age_seconds,
  }));
}

export async function getStagingBatch(q: Queryable, id: string): Promise<StagingBatch> {
  const { rows } = await q.query<StagingBatchRow>(`SELECT ${BATCH_COLUMNS} FROM staging_batches WHERE id = $1::text`, [
    id,
  ]);
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

/**
 * Marks a fully loaded batch ready, with its final counts. Returns false when the batch is no longer loading (it was
 * expired while this load ran): the load must not report success.
 */
export async function markStagingReady(
  q: Queryable,
  batchId: string,
  counts: { imported: number; duplicates: number; rejected: number },
): Promise<boolean> {
  const { rowCount } = await q.query(
    `UPDATE staging_batches SET status = 'ready', imported = $2::int, duplicates = $3::int, rejected = $4::int,
       updated_at = now()
     WHERE id = $1::text AND status = 'loading'`,
    [batchId, counts.imported, counts.duplicates, counts.rejected],
  );
  return (rowCount ?? 0) > 0;
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
