import type { Queryable } from '../tx.js';

export interface Loop {
  name: string;
  config: unknown;
  configHash: string;
  workflowId: string;
  createdAt: Date;
}

/** A loop row's columns, named as the fields of {@link Loop}. */
const LOOP_COLUMNS = `name, config, config_hash AS "configHash", workflow_id AS "workflowId", created_at AS "createdAt"`;

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
  const inserted = await q.query<Loop>(
    `INSERT INTO loops (name, config, config_hash, workflow_id)
     VALUES ($1::text, $2::jsonb, $3::text, $4::text)
     ON CONFLICT (name) DO NOTHING
     RETURNING ${LOOP_COLUMNS}`,
    [input.name, JSON.stringify(input.config), input.configHash, input.workflowId],
  );
  if (inserted.rows[0]) return { loop: inserted.rows[0], created: true };
  const existing = await getLoop(q, input.name);
  if (!existing) throw new Error(`loop ${input.name} vanished between insert and read`);
  return { loop: existing, created: false };
}

export async function getLoop(q: Queryable, name: string): Promise<Loop | undefined> {
  const { rows } = await q.query<Loop>(`SELECT ${LOOP_COLUMNS} FROM loops WHERE name = $1::text`, [name]);
  return rows[0];
}
