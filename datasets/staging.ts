import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import os from 'node:os';
import type pg from 'pg';
import { stagingBatchId } from '../core/inputs.js';
import type { ImportFormat, SplitMode } from '../core/vocabulary.js';
import { expireStagingBatch, listLoadingBatches, type StagingLoader } from '../db/queries/staging.js';

/**
 * A `loading` batch that has not been written to for this long is taken for abandoned even when its loader's liveness
 * cannot be checked (another host, or a batch from before loaders were recorded). A day: far longer than any import
 * goes without flushing a page (every 1,000 rows), short enough that `data staging` does not list dead imports for long.
 */
export const DEFAULT_STAGING_MAX_IDLE_SECONDS = 24 * 3600;

/** This process, as the loader of the batches it stages. */
export function thisLoader(): StagingLoader {
  return { host: os.hostname(), pid: process.pid };
}

/** Whether a process of this host still runs (EPERM: it runs as another user). */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ExpiredBatch {
  id: string;
  reason: string;
}

/**
 * Expires the `loading` batches whose import is gone: their loader ran on this host and no longer runs, or nobody
 * wrote to them for `maxIdleSeconds`. Their rows stay (what was read, and why lines were rejected); they are never
 * merged. Run at the start of every import and by `looptool data staging`.
 */
export async function expireAbandonedBatches(
  pool: pg.Pool,
  options: { maxIdleSeconds?: number; loader?: StagingLoader; isRunning?: (pid: number) => boolean } = {},
): Promise<ExpiredBatch[]> {
  const maxIdle = options.maxIdleSeconds ?? DEFAULT_STAGING_MAX_IDLE_SECONDS;
  const me = options.loader ?? thisLoader();
  const isRunning = options.isRunning ?? processRuns;
  const expired: ExpiredBatch[] = [];
  for (const batch of await listLoadingBatches(pool)) {
    let reason: string | undefined;
    const local = batch.loaderHost === me.host && batch.loaderPid !== null;
    if (local && batch.loaderPid !== me.pid && !isRunning(batch.loaderPid!))
      reason = `its import (process ${batch.loaderPid} on ${batch.loaderHost}) is gone`;
    else if (batch.idleSeconds > maxIdle && !(local && batch.loaderPid === me.pid))
      reason = `nothing was written to it for ${formatDuration(batch.idleSeconds)} (limit ${formatDuration(maxIdle)})`;
    if (reason && (await expireStagingBatch(pool, { id: batch.id, reason, seenUpdatedToken: batch.updatedToken })))
      expired.push({ id: batch.id, reason });
  }
  return expired;
}

/** `3 h 20 min`, `45 s`: an age as a person reads it. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** SHA-256 of a file's bytes, streamed (a file of any size in flat memory). */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The staging batch id of an injection: derived from what is injected (the file's content hash and how it is read)
 * and where (the loop), so the same content injected into the same loop again is the same batch, and its idempotency
 * key is the same too: the loop merges it once. Shaped as `injection-<uuid>`, the form the loop's update accepts.
 */
export async function injectionBatchId(input: {
  loopName: string;
  file: string;
  format: ImportFormat;
  split?: SplitMode;
  answersFile?: string;
}): Promise<{ batchId: string; contentHash: string }> {
  // The file is read twice (here for its hash, then to stage it), which a pipe cannot be.
  const info = await stat(input.file).catch((err: Error) => {
    throw new Error(`cannot read ${input.file}: ${err.message}`, { cause: err });
  });
  if (!info.isFile())
    throw new Error(
      `${input.file}: not a regular file; injections are named by their content, so save it to a file first`,
    );
  const contentHash = await fileSha256(input.file);
  const answers = input.answersFile ? await fileSha256(input.answersFile) : '';
  const key = createHash('sha256')
    .update(
      JSON.stringify([
        'looptool-injection-v1',
        input.loopName,
        contentHash,
        input.format,
        input.split ?? 'last',
        answers,
      ]),
    )
    .digest('hex');
  const uuid = `${key.slice(0, 8)}-${key.slice(8, 12)}-${key.slice(12, 16)}-${key.slice(16, 20)}-${key.slice(20, 32)}`;
  return { batchId: stagingBatchId('injection', uuid), contentHash };
}
