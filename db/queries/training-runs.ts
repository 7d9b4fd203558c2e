import type { Queryable } from '../tx.js';
import type { TrainingRunStatus } from '../../core/vocabulary.js';
import type { StageKey } from './stage-batches.js';

export interface TrainingRunRow {
  backend: string;
  jobKey: string;
  externalId: string | null;
  datasetVersionId: number;
  baseCheckpoint: string | null;
  status: TrainingRunStatus;
  checkpointUri: string | null;
  metrics: Record<string, number>;
}

/**
 * Records (or updates) the training run of an iteration. The job key changes only when a resumed loop submits the
 * iteration's job again after it failed (a new key, so the engine does not re-attach to the failed job); then the row
 * describes the new job.
 */
export async function upsertTrainingRun(q: Queryable, key: StageKey, row: TrainingRunRow): Promise<void> {
  await q.query(
    `INSERT INTO training_runs (loop_name, iteration, backend, job_key, external_id, dataset_version_id, base_checkpoint, status, checkpoint_uri, metrics, finished_at)
     VALUES ($1::text, $2::int, $3::text, $4::text, $5::text, $6::bigint, $7::text, $8::text, $9::text, $10::jsonb,
             CASE WHEN $8::text IN ('succeeded', 'failed', 'cancelled') THEN now() END)
     ON CONFLICT (loop_name, iteration) DO UPDATE SET job_key = excluded.job_key,
       external_id = CASE WHEN excluded.job_key <> training_runs.job_key THEN excluded.external_id
                          ELSE coalesce(excluded.external_id, training_runs.external_id) END,
       dataset_version_id = excluded.dataset_version_id, base_checkpoint = excluded.base_checkpoint,
       status = excluded.status,
       checkpoint_uri = CASE WHEN excluded.job_key <> training_runs.job_key THEN excluded.checkpoint_uri
                             ELSE coalesce(excluded.checkpoint_uri, training_runs.checkpoint_uri) END,
       metrics = excluded.metrics, finished_at = excluded.finished_at`,
    [
      key.loopName,
      key.iteration,
      row.backend,
      row.jobKey,
      row.externalId,
      row.datasetVersionId,
      row.baseCheckpoint,
      row.status,
      row.checkpointUri,
      JSON.stringify(row.metrics),
    ],
  );
}

/** The recorded training run of an iteration, if its job was ever submitted. */
export async function getTrainingRun(
  q: Queryable,
  key: StageKey,
): Promise<(TrainingRunRow & { iteration: number }) | undefined> {
  const { rows } = await q.query<{
    backend: string;
    job_key: string;
    external_id: string | null;
    dataset_version_id: string;
    base_checkpoint: string | null;
    status: TrainingRunStatus;
    checkpoint_uri: string | null;
    metrics: Record<string, number>;
  }>(
    `SELECT backend, job_key, external_id, dataset_version_id, base_checkpoint, status, checkpoint_uri, metrics
     FROM training_runs WHERE loop_name = $1::text AND iteration = $2::int`,
    [key.loopName, key.iteration],
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    iteration: key.iteration,
    backend: row.backend,
    jobKey: row.job_key,
    externalId: row.external_id,
    datasetVersionId: Number(row.dataset_version_id),
    baseCheckpoint: row.base_checkpoint,
    status: row.status,
    checkpointUri: row.checkpoint_uri,
    metrics: row.metrics,
  };
}
