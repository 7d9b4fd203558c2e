import type { Queryable } from '../tx.js';

/**
 * The statements that build a loop's dataset versions (D_1 from the seed pool, D_{j+1} by Eq. 5), each one set-based
 * INSERT … SELECT into an open version, so a million-member version never passes through the worker. Every member
 * insert is `ON CONFLICT DO NOTHING`: a sample that an earlier step already placed keeps its first role.
 */

/** The idempotency key of D_j of a loop: assembling it again (a retry, a replay) finds the same version. */
export const loopVersionKey = (loopName: string, iteration: number) => `loop:${loopName}:iter:${iteration}`;

/**
 * Creates the open version row of a loop's iteration (dataset = loop name, next version number) inside the
 * transaction that fills it. Serialised per loop by an advisory lock, so two attempts never race for a version
 * number; when another attempt committed the version meanwhile, returns it with `created: false` (it is filled).
 */
export async function createLoopVersion(
  tx: Queryable,
  input: { loopName: string; iteration: number; parentId: number; configHash: string },
): Promise<{ id: number; created: boolean }> {
  const key = loopVersionKey(input.loopName, input.iteration);
  await tx.query('SELECT pg_advisory_xact_lock(hashtext($1::text))', [`dataset:${input.loopName}`]);
  const again = await tx.query<{ id: string }>('SELECT id FROM dataset_versions WHERE idempotency_key = $1::text', [
    key,
  ]);
  if (again.rows[0]) return { id: Number(again.rows[0].id), created: false };
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO dataset_versions (dataset, version, parent_id, loop_name, iteration, config_hash, idempotency_key, note)
     SELECT $1::text, coalesce(max(version), 0) + 1, $2::bigint, $1::text, $3::int, $4::text, $5::text, $6::text
     FROM dataset_versions WHERE dataset = $1::text RETURNING id`,
    [
      input.loopName,
      input.parentId,
      input.iteration,
      input.configHash,
      key,
      `D_${input.iteration} of loop ${input.loopName}`,
    ],
  );
  return { id: Number(rows[0]!.id), created: true };
}

/** The open version a statement fills. */
interface IntoVersion {
  versionId: number;
}

/** The version, and the loop iteration whose results fill it. */
interface FromIteration extends IntoVersion {
  loopName: string;
  iteration: number;
}

/**
 * Adds the members a `SELECT version_id, sample_seq, role …` yields. Conflicts are skipped: a sample that an earlier
 * step placed keeps its first role.
 */
async function addSelected(q: Queryable, select: string, params: unknown[]): Promise<void> {
  await q.query(`INSERT INTO dataset_members (version_id, sample_seq, role) ${select} ON CONFLICT DO NOTHING`, params);
}

export async function countMembers(q: Queryable, versionId: number): Promise<number> {
  const { rows } = await q.query<{ n: string }>(
    'SELECT count(*) AS n FROM dataset_members WHERE version_id = $1::bigint',
    [versionId],
  );
  return Number(rows[0]!.n);
}

/** D_1: `size` members of the seed pool as `seed_new`, in an order fixed by the loop's seed (md5 of seed ‖ id). */
interface InitialDraw extends IntoVersion {
  seedVersionId: number;
  seed: number;
  size: number;
}
export const drawInitialMembers = (q: Queryable, input: InitialDraw) =>
  addSelected(
    q,
    `SELECT $1::bigint, m.sample_seq, 'seed_new' FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     WHERE m.version_id = $2::bigint ORDER BY md5($3::text || s.id), s.id LIMIT $4::int`,
    [input.versionId, input.seedVersionId, String(input.seed), input.size],
  );

/**
 * Eq. 5's error seeds: this iteration's consensus PRED_WRONG samples with their labels (`error_seed`), and LABEL_WRONG
 * samples as their corrected samples (`relabeled`).
 */
export const addErrorSeeds = (q: Queryable, input: FromIteration) =>
  addSelected(
    q,
    `SELECT $1::bigint, s.seq, CASE j.verdict WHEN 'label_wrong' THEN 'relabeled' ELSE 'error_seed' END
     FROM judgements j JOIN samples s ON s.id = CASE j.verdict WHEN 'label_wrong' THEN j.corrected_sample_id ELSE j.sample_id END
     WHERE j.loop_name = $2::text AND j.iteration = $3::int AND j.consensus
       AND (j.verdict = 'pred_wrong' OR (j.verdict = 'label_wrong' AND j.corrected_sample_id IS NOT NULL))
     ORDER BY s.seq`,
    [input.versionId, input.loopName, input.iteration],
  );

/** Eq. 5's fresh seed data: up to `limit` members of the seed pool this loop has never used, in the seed's order. */
export const addSeedNew = (
  q: Queryable,
  input: IntoVersion & { loopName: string; seedVersionId: number; seed: number; limit: number },
) =>
  addSelected(
    q,
    `SELECT $1::bigint, m.sample_seq, 'seed_new' FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     WHERE m.version_id = $3::bigint
       AND NOT EXISTS (SELECT 1 FROM dataset_members used JOIN dataset_versions v ON v.id = used.version_id
                       WHERE v.loop_name = $2::text AND used.sample_seq = m.sample_seq)
     ORDER BY md5($4::text || s.id), s.id LIMIT $5::int`,
    [input.versionId, input.loopName, input.seedVersionId, String(input.seed), input.limit],
  );

/** Eq. 5's expansions: up to `limit` of this iteration's accepted EDDE samples, in content order. */
export const addExpansions = (q: Queryable, input: FromIteration & { limit: number }) =>
  addSelected(
    q,
    `SELECT $1::bigint, s.seq, 'expanded' FROM expansions e JOIN samples s ON s.id = e.sample_id
     WHERE e.loop_name = $2::text AND e.iteration = $3::int AND e.status = 'accepted'
     ORDER BY s.id LIMIT $4::int`,
    [input.versionId, input.loopName, input.iteration, input.limit],
  );

/**
 * Eq. 5's high-perplexity fill: up to `limit` mastered samples of D_j (matched, or judged BOTH_CORRECT by consensus,
 * the paper's recommended reading) that are not in the version yet, highest perplexity first.
 */
export const addHighPerplexity = (q: Queryable, input: FromIteration & { currentVersionId: number; limit: number }) =>
  addSelected(
    q,
    `SELECT $1::bigint, m.sample_seq, 'high_ppl'
     FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     JOIN probe_results p ON p.loop_name = $2::text AND p.iteration = $3::int AND p.sample_id = s.id
     LEFT JOIN judgements j ON j.loop_name = p.loop_name AND j.iteration = p.iteration AND j.sample_id = p.sample_id
     WHERE m.version_id = $4::bigint AND (p.outcome = 'match' OR (j.verdict = 'both_correct' AND j.consensus))
       AND NOT EXISTS (SELECT 1 FROM dataset_members x WHERE x.version_id = $1::bigint AND x.sample_seq = m.sample_seq)
     ORDER BY p.perplexity DESC NULLS LAST, s.id LIMIT $5::int`,
    [input.versionId, input.loopName, input.iteration, input.currentVersionId, input.limit],
  );

/** An injected staging batch's samples as `injected` members. */
export const addInjected = (q: Queryable, input: IntoVersion & { batchId: string }) =>
  addSelected(
    q,
    `SELECT $1::bigint, s.seq, 'injected' FROM staging_members sm JOIN samples s ON s.id = sm.sample_id
     WHERE sm.batch_id = $2::text ORDER BY s.seq`,
    [input.versionId, input.batchId],
  );

/** Takes an injected batch's members out again (the batch could not be consumed by this version). */
export async function removeInjected(q: Queryable, input: { versionId: number; batchId: string }): Promise<void> {
  await q.query(
    `DELETE FROM dataset_members m USING staging_members sm JOIN samples s ON s.id = sm.sample_id
     WHERE m.version_id = $1::bigint AND m.sample_seq = s.seq AND m.role = 'injected' AND sm.batch_id = $2::text`,
    [input.versionId, input.batchId],
  );
}
