import type pg from 'pg';
import type { MemberRole } from '../../core/vocabulary.js';
import { type Queryable, withTransaction } from '../tx.js';
import { SAMPLE_COLUMNS, type StoredSample } from './samples.js';

export interface DatasetVersion {
  id: number;
  dataset: string;
  version: number;
  /** `dataset@version`, the name users type. */
  ref: string;
  parentId: number | null;
  loopName: string | null;
  iteration: number | null;
  configHash: string | null;
  idempotencyKey: string;
  status: 'open' | 'frozen';
  memberCount: number | null;
  countsByRole: Partial<Record<MemberRole, number>> | null;
  note: string | null;
  createdAt: Date;
  frozenAt: Date | null;
}

interface DatasetVersionRow {
  id: string;
  dataset: string;
  version: number;
  parent_id: string | null;
  loop_name: string | null;
  iteration: number | null;
  config_hash: string | null;
  idempotency_key: string;
  status: 'open' | 'frozen';
  member_count: number | null;
  counts_by_role: Partial<Record<MemberRole, number>> | null;
  note: string | null;
  created_at: Date;
  frozen_at: Date | null;
}

function toDatasetVersion(row: DatasetVersionRow): DatasetVersion {
  return {
    id: Number(row.id),
    dataset: row.dataset,
    version: row.version,
    ref: `${row.dataset}@${row.version}`,
    parentId: row.parent_id === null ? null : Number(row.parent_id),
    loopName: row.loop_name,
    iteration: row.iteration,
    configHash: row.config_hash,
    idempotencyKey: row.idempotency_key,
    status: row.status,
    memberCount: row.member_count,
    countsByRole: row.counts_by_role,
    note: row.note,
    createdAt: row.created_at,
    frozenAt: row.frozen_at,
  };
}

/** Thrown when a version reference names nothing, or an operation needs an open version and finds a frozen one. */
export class DatasetVersionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetVersionError';
  }
}

export interface CreateVersionInput {
  dataset: string;
  /** Caller-chosen natural key of this version (e.g. `loop:<name>:iter:<j>`, `import:<batch>`). */
  idempotencyKey: string;
  parentId?: number | null;
  loopName?: string | null;
  iteration?: number | null;
  configHash?: string | null;
  note?: string | null;
}

/**
 * Opens a new version `dataset@n+1`. Idempotent by `idempotencyKey`: asking again returns the version made the first
 * time (open or frozen), so a retried activity continues filling the same version rather than starting another.
 */
export async function createVersion(pool: pg.Pool, input: CreateVersionInput): Promise<DatasetVersion> {
  return withTransaction(pool, async (tx) => {
    // Serialises version numbering per dataset; the unique key makes the retry case a read.
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1::text))', [`dataset:${input.dataset}`]);
    const existing = await tx.query<DatasetVersionRow>(
      'SELECT * FROM dataset_versions WHERE idempotency_key = $1::text',
      [input.idempotencyKey],
    );
    if (existing.rows[0]) return toDatasetVersion(existing.rows[0]);
    const { rows } = await tx.query<DatasetVersionRow>(
      `INSERT INTO dataset_versions (dataset, version, parent_id, loop_name, iteration, config_hash, idempotency_key, note)
       SELECT $1::text, coalesce(max(version), 0) + 1, $2::bigint, $3::text, $4::int, $5::text, $6::text, $7::text
       FROM dataset_versions WHERE dataset = $1::text
       RETURNING *`,
      [
        input.dataset,
        input.parentId ?? null,
        input.loopName ?? null,
        input.iteration ?? null,
        input.configHash ?? null,
        input.idempotencyKey,
        input.note ?? null,
      ],
    );
    return toDatasetVersion(rows[0]!);
  });
}

async function requireOpen(q: Queryable, versionId: number): Promise<void> {
  const { rows } = await q.query<{ status: string }>('SELECT status FROM dataset_versions WHERE id = $1::bigint', [
    versionId,
  ]);
  if (!rows[0]) throw new DatasetVersionError(`dataset version ${versionId} does not exist`);
  if (rows[0].status !== 'open')
    throw new DatasetVersionError(`dataset version ${versionId} is frozen; make a new version instead`);
}

/**
 * Copies every member of `fromVersionId` into the open version `versionId`, keeping roles unless `role` is given.
 * One set-based statement; idempotent (existing members are left as they are).
 *
 * Into an empty version (every first try) the copy is a plain insert in key order: ON CONFLICT's speculative insertion
 * probes and confirms the key of every row, about twice the index work of a million-row copy, and key order makes both
 * indexes grow at their right edge. Only a retry, which finds members already there, pays for ON CONFLICT. (An
 * anti-join would be one statement for both, but a version just written has no statistics yet, and the planner then
 * rescans the new version's growing index once per row.) A second writer filling the same empty version at the same
 * moment, which no caller does, gets a unique violation instead of a silent skip: nothing is lost, and a rerun is a
 * no-op.
 */
export async function inheritMembers(
  q: Queryable,
  input: { versionId: number; fromVersionId: number; role?: MemberRole },
): Promise<number> {
  await requireOpen(q, input.versionId);
  const result = await q.query(
    `INSERT INTO dataset_members (version_id, sample_seq, role)
     SELECT $1::bigint, sample_seq, coalesce($3::text, role) FROM dataset_members WHERE version_id = $2::bigint
     ORDER BY sample_seq
     ${await unlessEmpty(q, input.versionId, 'ON CONFLICT (version_id, sample_seq) DO NOTHING')}`,
    [input.versionId, input.fromVersionId, input.role ?? null],
  );
  return result.rowCount ?? 0;
}

/** `clause` when the version has members already, else nothing: see {@link inheritMembers} on ON CONFLICT. */
async function unlessEmpty(q: Queryable, versionId: number, clause: string): Promise<string> {
  const { rows } = await q.query<{ empty: boolean }>(
    'SELECT NOT EXISTS (SELECT 1 FROM dataset_members WHERE version_id = $1::bigint) AS empty',
    [versionId],
  );
  return rows[0]?.empty ? '' : clause;
}

/**
 * The rows of `source` (a FROM item with a `sample_id` text column, and any others) in sample id order, each with its
 * sample's `seq` (NULL for an id that is in no sample): one primary-key lookup per id, in the index's order. Left to
 * itself the planner joins a few thousand ids or more by hashing all of samples (a second for a million samples, to
 * find 50,000 of them), or by a parallel scan of it; the lookups, in order, read each index page once. `OFFSET 0`
 * keeps the lateral subquery from being pulled up into a join the planner would choose for itself.
 */
const SEQS_OF_IDS = (source: string) =>
  `SELECT u.*, s.seq FROM (SELECT * FROM ${source} ORDER BY sample_id COLLATE "C") u
   LEFT JOIN LATERAL (SELECT seq FROM samples WHERE samples.id = u.sample_id OFFSET 0) s ON true`;

/**
 * Adds members to an open version. Idempotent: a sample already present keeps its first role, so replaying a batch
 * changes nothing. Ids that name no stored sample are an error (nothing of the batch is written). Returns how many rows
 * were new.
 */
export async function addMembers(
  q: Queryable,
  versionId: number,
  members: readonly { sampleId: string; role: MemberRole }[],
): Promise<number> {
  if (members.length === 0) return 0;
  await requireOpen(q, versionId);
  const { rows } = await q.query<{ inserted: number; missing: string | null }>(
    `WITH wanted AS (${SEQS_OF_IDS('unnest($2::text[], $3::text[]) AS u(sample_id, role)')}),
     inserted AS (
       INSERT INTO dataset_members (version_id, sample_seq, role)
       SELECT $1::bigint, seq, role FROM wanted WHERE seq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM wanted WHERE seq IS NULL)
       ORDER BY seq
       ON CONFLICT (version_id, sample_seq) DO NOTHING
       RETURNING 1
     )
     SELECT (SELECT count(*)::int FROM inserted) AS inserted, (SELECT min(sample_id) FROM wanted WHERE seq IS NULL) AS missing`,
    [versionId, members.map((m) => m.sampleId), members.map((m) => m.role)],
  );
  if (rows[0]?.missing) throw new DatasetVersionError(`cannot add sample ${rows[0].missing}: it is not in the store`);
  return rows[0]?.inserted ?? 0;
}

/**
 * Removes members from an open version (idempotent). The ids are turned into keys first and the keys sent back as a
 * constant: a version filled moments ago has no statistics, the planner reckons it has one member, and any plan that
 * starts from the version (the join this was, or a filter on a subquery's array) costs a lookup or an array scan per
 * member, seconds for a million. With a constant array the worst plan is one hash probe per member.
 */
export async function removeMembers(q: Queryable, versionId: number, sampleIds: readonly string[]): Promise<number> {
  if (sampleIds.length === 0) return 0;
  await requireOpen(q, versionId);
  const { rows } = await q.query<{ seq: string }>(
    `SELECT seq FROM (${SEQS_OF_IDS('unnest($1::text[]) AS u(sample_id)')}) found WHERE seq IS NOT NULL`,
    [sampleIds],
  );
  if (rows.length === 0) return 0;
  const result = await q.query(
    'DELETE FROM dataset_members WHERE version_id = $1::bigint AND sample_seq = ANY($2::bigint[])',
    [versionId, rows.map((r) => r.seq)],
  );
  return result.rowCount ?? 0;
}

/**
 * Freezes a version: records its member count and counts by role, after which triggers refuse any change to it or its
 * members. Idempotent: freezing a frozen version returns it unchanged. One statement counts and freezes (the row lock
 * the update takes is the one the separate read, count and update took in a transaction); only a version that was not
 * open is read again, to return it or say it does not exist.
 */
export async function freezeVersion(q: Queryable, versionId: number): Promise<DatasetVersion> {
  const { rows } = await q.query<DatasetVersionRow>(
    `WITH counts AS (
       SELECT role, count(*)::int AS n FROM dataset_members WHERE version_id = $1::bigint GROUP BY role
     )
     UPDATE dataset_versions SET status = 'frozen', frozen_at = now(),
       member_count = (SELECT coalesce(sum(n), 0)::int FROM counts),
       counts_by_role = (SELECT coalesce(jsonb_object_agg(role, n), '{}'::jsonb) FROM counts)
     WHERE id = $1::bigint AND status = 'open'
     RETURNING *`,
    [versionId],
  );
  if (rows[0]) return toDatasetVersion(rows[0]);
  const existing = await q.query<DatasetVersionRow>('SELECT * FROM dataset_versions WHERE id = $1::bigint', [
    versionId,
  ]);
  if (!existing.rows[0]) throw new DatasetVersionError(`dataset version ${versionId} does not exist`);
  return toDatasetVersion(existing.rows[0]);
}

/**
 * Finds a version by `dataset@n`, by `dataset` (its latest), or by numeric id. Throws a DatasetVersionError that says
 * what was looked for when nothing matches.
 */
export async function getVersion(q: Queryable, ref: string | number): Promise<DatasetVersion> {
  let result: pg.QueryResult<DatasetVersionRow>;
  const text = String(ref);
  const at = /^(.+)@(\d+)$/.exec(text);
  if (typeof ref === 'number' || /^\d+$/.test(text)) {
    result = await q.query<DatasetVersionRow>('SELECT * FROM dataset_versions WHERE id = $1::bigint', [Number(text)]);
  } else if (at) {
    result = await q.query<DatasetVersionRow>(
      'SELECT * FROM dataset_versions WHERE dataset = $1::text AND version = $2::int',
      [at[1], Number(at[2])],
    );
  } else {
    result = await q.query<DatasetVersionRow>(
      'SELECT * FROM dataset_versions WHERE dataset = $1::text ORDER BY version DESC LIMIT 1',
      [text],
    );
  }
  if (!result.rows[0])
    throw new DatasetVersionError(`no dataset version ${text} (expected dataset@n, a dataset name, or a version id)`);
  return toDatasetVersion(result.rows[0]);
}

export async function listVersions(
  q: Queryable,
  filter: { dataset?: string; loopName?: string } = {},
): Promise<DatasetVersion[]> {
  const { rows } = await q.query<DatasetVersionRow>(
    `SELECT * FROM dataset_versions
     WHERE ($1::text IS NULL OR dataset = $1::text) AND ($2::text IS NULL OR loop_name = $2::text)
     ORDER BY dataset, version`,
    [filter.dataset ?? null, filter.loopName ?? null],
  );
  return rows.map(toDatasetVersion);
}

export interface VersionMember {
  sampleId: string;
  role: MemberRole;
  /** Resume point: pass the last member's cursor as `after` to continue after it. */
  cursor: number;
}

/**
 * Streams a version's members in storage order, one keyset page at a time, so a million-member version is never held
 * in memory. Resumable from any member's `cursor` (an activity heartbeats it and a retry continues after it).
 */
export async function* streamMembers(
  q: Queryable,
  versionId: number,
  options: { pageSize?: number; after?: number; role?: MemberRole } = {},
): AsyncGenerator<VersionMember[]> {
  const pageSize = options.pageSize ?? 5_000;
  let after = options.after ?? 0;
  for (;;) {
    const { rows } = await q.query<{ sample_id: string; role: MemberRole; seq: string }>(
      `SELECT s.id AS sample_id, m.role, m.sample_seq AS seq FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
       WHERE m.version_id = $1::bigint AND m.sample_seq > $2::bigint AND ($4::text IS NULL OR m.role = $4::text)
       ORDER BY m.sample_seq LIMIT $3::int`,
      [versionId, after, pageSize, options.role ?? null],
    );
    if (rows.length === 0) return;
    yield rows.map((r) => ({ sampleId: r.sample_id, role: r.role, cursor: Number(r.seq) }));
    if (rows.length < pageSize) return;
    after = Number(rows[rows.length - 1]!.seq);
  }
}

export interface VersionDiff {
  from: string;
  to: string;
  added: number;
  removed: number;
  /** Members whose sample was replaced by its label correction (counted in neither added nor removed). */
  relabeled: number;
  /** Same sample, different role. */
  roleChanged: number;
  unchanged: number;
  addedByRole: Record<string, number>;
  removedByRole: Record<string, number>;
  addedByOrigin: Record<string, number>;
  removedByOrigin: Record<string, number>;
}

/**
 * Compares two versions set-wise in the database. A removed sample whose label correction was added counts as
 * relabeled, not as one removal plus one addition. Origins are each sample's first recorded origin kind.
 */
export async function diffVersions(
  q: Queryable,
  fromRef: string | number,
  toRef: string | number,
): Promise<VersionDiff> {
  const [from, to] = [await getVersion(q, fromRef), await getVersion(q, toRef)];
  const { rows } = await q.query<{ change: string; role: string; origin: string | null; n: number }>(
    `WITH a AS (SELECT s.id AS sample_id, m.role FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $1::bigint),
          b AS (SELECT s.id AS sample_id, m.role FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq WHERE m.version_id = $2::bigint),
          relabels AS (
            SELECT DISTINCT o.sample_id AS new_id, o.parent_sample_id AS old_id
            FROM sample_origins o
            JOIN b ON b.sample_id = o.sample_id
            JOIN a ON a.sample_id = o.parent_sample_id
            WHERE o.kind = 'label_correction'
              AND NOT EXISTS (SELECT 1 FROM a a2 WHERE a2.sample_id = o.sample_id)
              AND NOT EXISTS (SELECT 1 FROM b b2 WHERE b2.sample_id = o.parent_sample_id)
          ),
          first_origin AS (
            SELECT DISTINCT ON (sample_id) sample_id, kind FROM all_sample_origins
            WHERE sample_id IN (SELECT sample_id FROM a UNION SELECT sample_id FROM b)
            ORDER BY sample_id, recorded_at, id NULLS FIRST
          ),
          changes AS (
            SELECT 'added' AS change, b.sample_id, b.role FROM b
              WHERE NOT EXISTS (SELECT 1 FROM a WHERE a.sample_id = b.sample_id)
                AND NOT EXISTS (SELECT 1 FROM relabels r WHERE r.new_id = b.sample_id)
            UNION ALL
            SELECT 'removed', a.sample_id, a.role FROM a
              WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.sample_id = a.sample_id)
                AND NOT EXISTS (SELECT 1 FROM relabels r WHERE r.old_id = a.sample_id)
            UNION ALL
            SELECT 'relabeled', r.new_id, b.role FROM relabels r JOIN b ON b.sample_id = r.new_id
            UNION ALL
            SELECT CASE WHEN a.role = b.role THEN 'unchanged' ELSE 'role_changed' END, b.sample_id, b.role
              FROM a JOIN b USING (sample_id)
          )
     SELECT c.change, c.role, f.kind AS origin, count(*)::int AS n
     FROM changes c LEFT JOIN first_origin f USING (sample_id)
     GROUP BY 1, 2, 3`,
    [from.id, to.id],
  );
  const diff: VersionDiff = {
    from: from.ref,
    to: to.ref,
    added: 0,
    removed: 0,
    relabeled: 0,
    roleChanged: 0,
    unchanged: 0,
    addedByRole: {},
    removedByRole: {},
    addedByOrigin: {},
    removedByOrigin: {},
  };
  const bump = (counts: Record<string, number>, key: string, n: number) => (counts[key] = (counts[key] ?? 0) + n);
  for (const row of rows) {
    const origin = row.origin ?? 'unknown';
    if (row.change === 'added') {
      diff.added += row.n;
      bump(diff.addedByRole, row.role, row.n);
      bump(diff.addedByOrigin, origin, row.n);
    } else if (row.change === 'removed') {
      diff.removed += row.n;
      bump(diff.removedByRole, row.role, row.n);
      bump(diff.removedByOrigin, origin, row.n);
    } else if (row.change === 'relabeled') diff.relabeled += row.n;
    else if (row.change === 'role_changed') diff.roleChanged += row.n;
    else diff.unchanged += row.n;
  }
  return diff;
}

/**
 * Adds every sample of a staging batch to an open version with `role` (idempotent, one statement). A dataset's first
 * import fills an empty version, without ON CONFLICT as {@link inheritMembers} does (100,000 members: 0.74–0.83 s
 * → 0.46–0.53 s).
 */
export async function addMembersFromStaging(
  q: Queryable,
  input: { versionId: number; batchId: string; role: MemberRole },
): Promise<number> {
  await requireOpen(q, input.versionId);
  const result = await q.query(
    `INSERT INTO dataset_members (version_id, sample_seq, role)
     SELECT $1::bigint, s.seq, $3::text FROM staging_members sm JOIN samples s ON s.id = sm.sample_id
     WHERE sm.batch_id = $2::text
     ORDER BY s.seq
     ${await unlessEmpty(q, input.versionId, 'ON CONFLICT (version_id, sample_seq) DO NOTHING')}`,
    [input.versionId, input.batchId, input.role],
  );
  return result.rowCount ?? 0;
}

/** How many samples of a staging batch a version does not have yet (all of them when `versionId` is null). */
export async function countStagedNotIn(
  q: Queryable,
  input: { batchId: string; versionId: number | null },
): Promise<number> {
  if (input.versionId === null) {
    // No version to compare with (a dataset's first import): every member counts, read from the batch's primary-key
    // range alone. The join below looked up each member's sample for its seq (0.5 s of a 100,000-sample import);
    // the sample is there, since a member's reference is checked when it is written (0010_cheaper_import_checks.sql).
    const { rows } = await q.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM staging_members WHERE batch_id = $1::text',
      [input.batchId],
    );
    return rows[0]?.n ?? 0;
  }
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM staging_members sm JOIN samples s ON s.id = sm.sample_id
     WHERE sm.batch_id = $1::text
       AND NOT EXISTS (SELECT 1 FROM dataset_members m WHERE m.version_id = $2::bigint AND m.sample_seq = s.seq)`,
    [input.batchId, input.versionId],
  );
  return rows[0]?.n ?? 0;
}

/** The newest version of a dataset, or undefined when it has none. */
export async function latestVersion(q: Queryable, dataset: string): Promise<DatasetVersion | undefined> {
  const { rows } = await q.query<DatasetVersionRow>(
    'SELECT * FROM dataset_versions WHERE dataset = $1::text ORDER BY version DESC LIMIT 1',
    [dataset],
  );
  return rows[0] ? toDatasetVersion(rows[0]) : undefined;
}

export async function findVersionByKey(q: Queryable, idempotencyKey: string): Promise<DatasetVersion | undefined> {
  const { rows } = await q.query<DatasetVersionRow>('SELECT * FROM dataset_versions WHERE idempotency_key = $1::text', [
    idempotencyKey,
  ]);
  return rows[0] ? toDatasetVersion(rows[0]) : undefined;
}

/**
 * Streams a version's sample ids in content order (sample id), one keyset page at a time. Unlike {@link streamMembers}
 * (storage order, which depends on when each sample happened to be inserted), this order is the same in every
 * database holding the same version, so an export of it is byte-identical wherever it is made.
 */
export async function* streamMemberIdsInContentOrder(
  q: Queryable,
  versionId: number,
  pageSize = 5_000,
): AsyncGenerator<string[]> {
  let after = '';
  for (;;) {
    const { rows } = await q.query<{ id: string }>(
      `SELECT s.id FROM samples s JOIN dataset_members m ON m.sample_seq = s.seq AND m.version_id = $1::bigint
       WHERE s.id > $2::text ORDER BY s.id LIMIT $3::int`,
      [versionId, after, pageSize],
    );
    if (rows.length === 0) return;
    yield rows.map((r) => r.id);
    if (rows.length < pageSize) return;
    after = rows[rows.length - 1]!.id;
  }
}

/** A version's members counted by role and by how each sample first entered the store (`looptool data show`). */
export async function countByRoleAndOrigin(
  q: Queryable,
  versionId: number,
): Promise<{ role: MemberRole; origin: string | null; n: number }[]> {
  const { rows } = await q.query<{ role: MemberRole; origin: string | null; n: number }>(
    `SELECT m.role, o.kind AS origin, count(*)::int AS n
     FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
     LEFT JOIN LATERAL (
       SELECT kind FROM all_sample_origins WHERE sample_id = s.id ORDER BY recorded_at, id NULLS FIRST LIMIT 1
     ) o ON true
     WHERE m.version_id = $1::bigint GROUP BY 1, 2 ORDER BY 1, 2`,
    [versionId],
  );
  return rows;
}

/**
 * Streams a version's samples whole, in content order (sample id) like {@link streamMemberIdsInContentOrder}, for
 * exports. The order is computed once: a cursor over the version's keys sorted by sample id, read a page at a time,
 * each page's content then looked up by key. Keyset pages cannot do this cheaply, since no index orders a version's
 * members by sample id: each page joined and sorted the whole version again (or walked every sample in the store
 * after the last id), so a 100,000-sample export sorted 100,000 rows fifty times. One read-only transaction holds the
 * cursor, which also gives the whole export one snapshot. The next page is fetched while the caller works on this one
 * (one page ahead at most), so decoding and writing overlap the database's reading.
 */
export async function* streamSamplesInContentOrder(
  pool: pg.Pool,
  versionId: number,
  pageSize = 2_000,
): AsyncGenerator<StoredSample[]> {
  const client = await pool.connect();
  const page = async (): Promise<StoredSample[]> => {
    const keys = (await client.query<{ seq: string }>(`FETCH ${pageSize} FROM version_samples`)).rows.map((r) => r.seq);
    if (keys.length === 0) return [];
    const { rows } = await client.query<StoredSample & { seq: string }>(
      `SELECT s.seq, ${SAMPLE_COLUMNS} FROM samples s JOIN toolsets t ON t.id = s.toolset_id
       WHERE s.seq = ANY($1::bigint[])`,
      [keys],
    );
    const bySeq = new Map(rows.map(({ seq, ...stored }) => [seq, stored]));
    return keys.map((seq) => bySeq.get(seq)!);
  };
  let next: Promise<StoredSample[]> | undefined;
  try {
    await client.query('BEGIN READ ONLY');
    await client.query(
      `DECLARE version_samples NO SCROLL CURSOR FOR
       SELECT s.seq FROM dataset_members m JOIN samples s ON s.seq = m.sample_seq
       WHERE m.version_id = $1::bigint ORDER BY s.id`,
      [versionId],
    );
    next = page();
    while (next) {
      const rows: StoredSample[] = await next;
      next = rows.length === pageSize ? page() : undefined;
      // A caller that stops early leaves the prefetch unread: its failure must not be an unhandled rejection.
      next?.catch(() => {});
      if (rows.length > 0) yield rows;
    }
  } finally {
    await next?.catch(() => {});
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}
