import type { Queryable } from '../tx.js';

export interface LoopRow {
  name: string;
  config: unknown;
  config_hash: string;
  workflow_id: string;
  created_at: Date;
  updated_at: Date;
}

export interface Loop {
  name: string;
  config: unknown;
  configHash: string;
  workflowId: string;
  createdAt: Date;
}

function toLoop(row: LoopRow): Loop {
  return { name: row.name, config: row.config, configHash: row.config_hash, workflowId: row.workflow_id, createdAt: row.created_at };
}

export interface RegisterLoopInput {
  name: string;
  config: unknown;
  configHash: string;
  workflowId: string;
}

/**
 * Records a loop by its name. Idempotent: registering an existing name returns the stored row unchanged, so a retried
 * activity or a second `loop start` cannot overwrite the config a running loop was started with.
 */
export async function registerLoop(q: Queryable, input: RegisterLoopInput): Promise<{ loop: Loop; created: boolean }> {
  const inserted = await q.query<LoopRow>(
    `INSERT INTO loops (name, config, config_hash, workflow_id)
     VALUES ($1::text, $2::jsonb, $3::text, $4::text)
     ON CONFLICT (name) DO NOTHING
     RETURNING *`,
    [input.name, JSON.stringify(input.config), input.configHash, input.workflowId],
  );
  if (inserted.rows[0]) return { loop: toLoop(inserted.rows[0]), created: true };
  const existing = await getLoop(q, input.name);
  if (!existing) throw new Error(`loop ${input.name} vanished between insert and read`);
  return { loop: existing, created: false };
}

export async function getLoop(q: Queryable, name: string): Promise<Loop | undefined> {
  const { rows } = await q.query<LoopRow>('SELECT * FROM loops WHERE name = $1::text', [name]);
  return rows[0] ? toLoop(rows[0]) : undefined;
}
