import type { Queryable } from '../tx.js';
import { contaminatedSampleSql } from './decontam.js';

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

/**
 * D_1: `size` members of the seed pool as `seed_new`, in an order fixed by the loop's seed (md5 of seed ‖ id), never
 * from its held-out slice (the other end of the same order) nor, with an exclusion, overlapping the evaluation sets.
 */
interface InitialDraw extends IntoVersion {
  seedVersionId: number;
  seed: number;
  size: number;
  heldOutSize: number;
  exclusion?: Exclusion;
}
export const drawInitialMembers = (q: Queryable, input: InitialDraw) => {
  const params: unknown[] = [input.versionId, input.seedVersionId, String(input.seed), input.size, input.heldOutSize];
  const exclusion = notContaminated('m.sample_seq', params, input.exclusion);
  return addSelected(
    q,
    `SELECT $1::bigint, m.sample_seq, 'seed_new' FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     WHERE m.version_id = $2::bigint AND m.sample_seq NOT IN (${HELD_OUT_SLICE('$2::bigint', '$3::text', '$5::int')})
       AND ${exclusion}
     ORDER BY md5($3::text || s.id), s.id LIMIT $4::int`,
    params,
  );
};

/**
 * One part of Eq. 5: a SELECT of `(version_id, sample_seq, role)` rows in the order the part is taken, over candidates
 * that are not members of the version yet (so a LIMIT counts real insertions), with its parameters. The same statement
 * counts what is available (for the plan, core/stages/composition.ts) and inserts what the plan takes.
 */
interface Part {
  select: string;
  params: unknown[];
}

/**
 * Leaving out samples that overlap the evaluation sets (`decontamination.exclude`): the index their checks were made
 * against and whether a shared tool name counts. Absent: nothing is left out.
 */
export interface Exclusion {
  indexId: number;
  toolNames: boolean;
}

/**
 * The decontamination condition of a part whose parameters so far are `params`: appended as two more parameters, so
 * every part takes the same clause; with no exclusion the index is null and the condition is always true.
 */
function notContaminated(seqColumn: string, params: unknown[], exclusion: Exclusion | undefined): string {
  const at = params.length;
  params.push(exclusion?.indexId ?? null, exclusion?.toolNames ?? false);
  return `NOT ${contaminatedSampleSql(seqColumn, `$${at + 1}::bigint`, `$${at + 2}::boolean`)}`;
}

/** Members of the open version `$1` are skipped by every part. */
const NOT_YET_MEMBER = (seqColumn: string) =>
  `NOT EXISTS (SELECT 1 FROM dataset_members x WHERE x.version_id = $1::bigint AND x.sample_seq = ${seqColumn})`;

export async function countPart(q: Queryable, part: Part): Promise<number> {
  const { rows } = await q.query<{ n: string }>(`SELECT count(*) AS n FROM (${part.select}) c`, part.params);
  return Number(rows[0]!.n);
}

/** Adds the first `limit` rows of a part. */
export async function addPart(q: Queryable, part: Part, limit: number): Promise<void> {
  if (limit <= 0) return;
  await addSelected(q, `${part.select} LIMIT $${part.params.length + 1}::int`, [...part.params, limit]);
}

/**
 * The seed pool's held-out slice: the last `size` members in the loop's seed order (md5 of seed ‖ id). D_1 and seed-new
 * draws take from the front of the same order and stop short of it, so no round trains on it.
 */
const HELD_OUT_SLICE = (versionParam: string, seedParam: string, sizeParam: string) =>
  `SELECT hm.sample_seq FROM dataset_members hm JOIN samples hs ON hs.seq = hm.sample_seq
   WHERE hm.version_id = ${versionParam} ORDER BY md5(${seedParam} || hs.id) DESC, hs.id DESC LIMIT ${sizeParam}`;

/** The held-out slice's sample ids, in seq order. */
export async function heldOutSampleIds(
  q: Queryable,
  input: { seedVersionId: number; seed: number; size: number },
): Promise<string[]> {
  if (input.size <= 0) return [];
  const { rows } = await q.query<{ id: string }>(
    `SELECT s.id FROM samples s WHERE s.seq IN (${HELD_OUT_SLICE('$1::bigint', '$2::text', '$3::int')}) ORDER BY s.seq`,
    [input.seedVersionId, String(input.seed), input.size],
  );
  return rows.map((r) => r.id);
}

/**
 * Eq. 5's error seeds: this iteration's consensus PRED_WRONG samples with their labels (`error_seed`), and LABEL_WRONG
 * samples as their corrected samples (`relabeled`), in the loop's seed order (so a cap takes an unbiased subset).
 */
export const errorSeedsPart = (input: FromIteration & { seed: number; exclusion?: Exclusion }): Part => {
  const params: unknown[] = [input.versionId, input.loopName, input.iteration, String(input.seed)];
  const exclusion = notContaminated('s.seq', params, input.exclusion);
  return {
    select: `SELECT $1::bigint, s.seq, CASE j.verdict WHEN 'label_wrong' THEN 'relabeled' ELSE 'error_seed' END
     FROM judgements j JOIN samples s ON s.id = CASE j.verdict WHEN 'label_wrong' THEN j.corrected_sample_id ELSE j.sample_id END
     WHERE j.loop_name = $2::text AND j.iteration = $3::int AND j.consensus
       AND (j.verdict = 'pred_wrong' OR (j.verdict = 'label_wrong' AND j.corrected_sample_id IS NOT NULL))
       AND ${NOT_YET_MEMBER('s.seq')} AND ${exclusion}
     ORDER BY md5($4::text || s.id), s.id`,
    params,
  };
};

/**
 * Eq. 5's fresh seed data: members of the seed pool this loop has never used, outside the held-out slice, in the seed's
 * order.
 */
export const seedNewPart = (
  input: IntoVersion & {
    loopName: string;
    seedVersionId: number;
    seed: number;
    heldOutSize: number;
    exclusion?: Exclusion;
  },
): Part => {
  const params: unknown[] = [
    input.versionId,
    input.loopName,
    input.seedVersionId,
    String(input.seed),
    input.heldOutSize,
  ];
  const exclusion = notContaminated('m.sample_seq', params, input.exclusion);
  return {
    select: `SELECT $1::bigint, m.sample_seq, 'seed_new' FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     WHERE m.version_id = $3::bigint
       AND NOT EXISTS (SELECT 1 FROM dataset_members used JOIN dataset_versions v ON v.id = used.version_id
                       WHERE v.loop_name = $2::text AND used.sample_seq = m.sample_seq)
       AND m.sample_seq NOT IN (${HELD_OUT_SLICE('$3::bigint', '$4::text', '$5::int')})
       AND ${NOT_YET_MEMBER('m.sample_seq')} AND ${exclusion}
     ORDER BY md5($4::text || s.id), s.id`,
    params,
  };
};

/**
 * Eq. 5's expansions: this iteration's accepted EDDE samples, balanced per error seed: every seed's first expansion
 * (in the loop's seed order) before any seed's second, so when the budget binds each seed keeps its share instead of
 * the seeds that sort first keeping all of theirs.
 */
export const expansionsPart = (input: FromIteration & { seed: number; exclusion?: Exclusion }): Part => {
  const params: unknown[] = [input.versionId, input.loopName, input.iteration, String(input.seed)];
  const exclusion = notContaminated('s.seq', params, input.exclusion);
  return {
    select: `SELECT $1::bigint, ranked.seq, 'expanded' FROM (
       SELECT s.seq, s.id,
              row_number() OVER (PARTITION BY e.seed_sample_id ORDER BY md5($4::text || s.id), s.id) AS rank
       FROM expansions e JOIN samples s ON s.id = e.sample_id
       WHERE e.loop_name = $2::text AND e.iteration = $3::int AND e.status = 'accepted'
         AND ${NOT_YET_MEMBER('s.seq')} AND ${exclusion}) ranked
     ORDER BY ranked.rank, md5($4::text || ranked.id), ranked.id`,
    params,
  };
};

/**
 * Eq. 5's high-perplexity fill: mastered samples of D_j (matched, or judged BOTH_CORRECT by consensus, the paper's
 * recommended reading) that are not in the version yet, highest perplexity first.
 */
export const highPerplexityPart = (
  input: FromIteration & { currentVersionId: number; exclusion?: Exclusion },
): Part => {
  const params: unknown[] = [input.versionId, input.loopName, input.iteration, input.currentVersionId];
  const exclusion = notContaminated('m.sample_seq', params, input.exclusion);
  return {
    select: `SELECT $1::bigint, m.sample_seq, 'high_ppl'
     FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     JOIN probe_results p ON p.loop_name = $2::text AND p.iteration = $3::int AND p.sample_id = s.id
     LEFT JOIN judgements j ON j.loop_name = p.loop_name AND j.iteration = p.iteration AND j.sample_id = p.sample_id
     WHERE m.version_id = $4::bigint AND (p.outcome = 'match' OR (j.verdict = 'both_correct' AND j.consensus))
       AND ${NOT_YET_MEMBER('m.sample_seq')} AND ${exclusion}
     ORDER BY p.perplexity DESC NULLS LAST, s.id`,
    params,
  };
};

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
