import type { OriginKind } from '../../core/vocabulary.js';
import type { Queryable } from '../tx.js';

export interface SampleOrigin {
  sampleId: string;
  kind: OriginKind;
  /** The error seed (expansion) or the sample whose label was wrong (label_correction). */
  parentSampleId?: string | null;
  loopName?: string | null;
  iteration?: number | null;
  detail?: Record<string, unknown>;
}

/**
 * Records where samples came from, in one statement. Idempotent on (sample, kind, parent, loop, iteration): replaying
 * a batch records nothing new.
 */
export async function recordOrigins(q: Queryable, origins: readonly SampleOrigin[]): Promise<number> {
  if (origins.length === 0) return 0;
  const result = await q.query(
    `INSERT INTO sample_origins (sample_id, kind, parent_sample_id, loop_name, iteration, detail)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::jsonb[])
     ON CONFLICT (sample_id, kind, coalesce(parent_sample_id, ''), coalesce(loop_name, ''), coalesce(iteration, -1)) DO NOTHING`,
    [
      origins.map((o) => o.sampleId),
      origins.map((o) => o.kind),
      origins.map((o) => o.parentSampleId ?? null),
      origins.map((o) => o.loopName ?? null),
      origins.map((o) => o.iteration ?? null),
      origins.map((o) => JSON.stringify(o.detail ?? {})),
    ],
  );
  return result.rowCount ?? 0;
}

export interface LineageEdge {
  sampleId: string;
  parentSampleId: string;
  kind: OriginKind;
  loopName: string | null;
  iteration: number | null;
  detail: Record<string, unknown>;
  /** 1 for a direct parent/child, 2 for a grandparent/grandchild, … */
  depth: number;
}

export interface Lineage {
  sampleId: string;
  origins: Omit<LineageEdge, 'depth' | 'sampleId' | 'parentSampleId'>[];
  /** What this sample came from, nearest first. */
  ancestors: LineageEdge[];
  /** What came from it, nearest first. */
  descendants: LineageEdge[];
}

interface EdgeRow {
  sample_id: string;
  parent_sample_id: string;
  kind: OriginKind;
  loop_name: string | null;
  iteration: number | null;
  detail: Record<string, unknown>;
  depth: number;
}

const toEdge = (row: EdgeRow): LineageEdge => ({
  sampleId: row.sample_id,
  parentSampleId: row.parent_sample_id,
  kind: row.kind,
  loopName: row.loop_name,
  iteration: row.iteration,
  detail: row.detail,
  depth: row.depth,
});

/**
 * A sample's origins (imports and injections included: `all_sample_origins`, one per staging batch that read it) and
 * its lineage both ways, walked with recursive queries (bounded depth, so a cycle cannot loop forever). Parents are
 * recorded in sample_origins only: an import has none.
 */
export async function getLineage(q: Queryable, sampleId: string, maxDepth = 50): Promise<Lineage> {
  const origins = await q.query<{
    kind: OriginKind;
    loop_name: string | null;
    iteration: number | null;
    detail: Record<string, unknown>;
  }>(
    `SELECT kind, loop_name, iteration, detail FROM all_sample_origins WHERE sample_id = $1::text
     ORDER BY recorded_at, id NULLS FIRST`,
    [sampleId],
  );
  const ancestors = await q.query<EdgeRow>(
    `WITH RECURSIVE up AS (
       SELECT sample_id, parent_sample_id, kind, loop_name, iteration, detail, 1 AS depth
       FROM sample_origins WHERE sample_id = $1::text AND parent_sample_id IS NOT NULL
       UNION ALL
       SELECT o.sample_id, o.parent_sample_id, o.kind, o.loop_name, o.iteration, o.detail, up.depth + 1
       FROM sample_origins o JOIN up ON o.sample_id = up.parent_sample_id
       WHERE o.parent_sample_id IS NOT NULL AND up.depth < $2::int
     )
     SELECT * FROM up ORDER BY depth, iteration NULLS FIRST, sample_id`,
    [sampleId, maxDepth],
  );
  const descendants = await q.query<EdgeRow>(
    `WITH RECURSIVE down AS (
       SELECT sample_id, parent_sample_id, kind, loop_name, iteration, detail, 1 AS depth
       FROM sample_origins WHERE parent_sample_id = $1::text
       UNION ALL
       SELECT o.sample_id, o.parent_sample_id, o.kind, o.loop_name, o.iteration, o.detail, down.depth + 1
       FROM sample_origins o JOIN down ON o.parent_sample_id = down.sample_id
       WHERE down.depth < $2::int
     )
     SELECT * FROM down ORDER BY depth, iteration NULLS FIRST, sample_id`,
    [sampleId, maxDepth],
  );
  return {
    sampleId,
    origins: origins.rows.map((r) => ({
      kind: r.kind,
      loopName: r.loop_name,
      iteration: r.iteration,
      detail: r.detail,
    })),
    ancestors: ancestors.rows.map(toEdge),
    descendants: descendants.rows.map(toEdge),
  };
}
