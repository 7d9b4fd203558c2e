import type { TrainingWeights } from '../../core/vocabulary.js';
import type { Queryable } from '../tx.js';
import type { StageKey } from './stage-batches.js';

/** How one iteration's policy is served. */
export interface DeploymentRow {
  servedModel: string;
  kind: TrainingWeights;
  checkpointPath: string;
  baseUrls: string[];
}

export interface RecordedDeployment extends DeploymentRow {
  iteration: number;
  deployedAt: Date;
}

/**
 * Records an iteration's deployment, or refreshes the record of the same one (a retried deploy). Returns false, and
 * writes nothing, when the iteration or its served name is already recorded with another checkpoint: a name stays
 * bound to the weights it was first served with.
 */
export async function recordDeployment(q: Queryable, key: StageKey, row: DeploymentRow): Promise<boolean> {
  const { rowCount } = await q.query(
    `INSERT INTO deployments (loop_name, iteration, served_model, kind, checkpoint_path, base_urls)
     VALUES ($1::text, $2::int, $3::text, $4::text, $5::text, $6::text[])
     ON CONFLICT (loop_name, iteration) DO UPDATE SET base_urls = excluded.base_urls, deployed_at = now()
       WHERE deployments.served_model = excluded.served_model AND deployments.checkpoint_path = excluded.checkpoint_path
         AND deployments.kind = excluded.kind`,
    [key.loopName, key.iteration, row.servedModel, row.kind, row.checkpointPath, row.baseUrls],
  );
  return rowCount === 1;
}

interface DeploymentDbRow {
  iteration: number;
  served_model: string;
  kind: TrainingWeights;
  checkpoint_path: string;
  base_urls: string[];
  deployed_at: Date;
}

const fromDb = (r: DeploymentDbRow): RecordedDeployment => ({
  iteration: r.iteration,
  servedModel: r.served_model,
  kind: r.kind,
  checkpointPath: r.checkpoint_path,
  baseUrls: r.base_urls,
  deployedAt: r.deployed_at,
});

/** The recorded deployment of one iteration, if it was ever deployed. */
export async function getDeployment(q: Queryable, key: StageKey): Promise<RecordedDeployment | undefined> {
  const { rows } = await q.query<DeploymentDbRow>(
    `SELECT iteration, served_model, kind, checkpoint_path, base_urls, deployed_at FROM deployments
     WHERE loop_name = $1::text AND iteration = $2::int`,
    [key.loopName, key.iteration],
  );
  return rows[0] ? fromDb(rows[0]) : undefined;
}

/** Every deployment of a loop, by iteration: which model name served which checkpoint. */
export async function listDeployments(q: Queryable, loopName: string): Promise<RecordedDeployment[]> {
  const { rows } = await q.query<DeploymentDbRow>(
    `SELECT iteration, served_model, kind, checkpoint_path, base_urls, deployed_at FROM deployments
     WHERE loop_name = $1::text ORDER BY iteration`,
    [loopName],
  );
  return rows.map(fromDb);
}
