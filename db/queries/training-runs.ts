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

/** Records (or updates) the training run of an iteration; the job key never changes once written. */
export async function upsertTrainingRun(q: Queryable, key: StageKey, row: TrainingRunRow): Promise<void> {
  await q.query(
    `INSERT INTO training_runs (loop_name, iteration, backend, job_key, external_id, dataset_version_id, base_checkpoint, status, checkpoint_uri, metrics, finished_at)
     VALUES ($1::text, $2::int, $3::text, $4::text, $5::text, $6::bigint, $7::text, $8::text, $9::text, $10::jsonb,
             CASE WHEN $8::text IN ('succeeded', 'failed', 'cancelled') THEN now() END)
     ON CONFLICT (loop_name, iteration) DO UPDATE SET external_id = coalesce(excluded.external_id, training_runs.external_id),
       status = excluded.status, checkpoint_uri = coalesce(excluded.checkpoint_uri, training_runs.checkpoint_uri),
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
