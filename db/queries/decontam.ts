import type { EvalIndexSource, SampleOverlap } from '../../core/decontam.js';
import type { Queryable } from '../tx.js';
import { insertRows } from './unnest.js';

/**
 * Decontamination's tables (migration 0009): evaluation indexes, per-(index, sample) overlap checks, and per-version
 * reports; plus what dataset assembly uses to leave overlapping samples out (`contaminatedSampleSql`,
 * `removeContaminatedMembers`).
 */

/** Finds or records the index of this fingerprint; returns its id. Idempotent (two workers at once get one row). */
export async function ensureDecontamIndex(
  q: Queryable,
  input: {
    fingerprint: string;
    ngram: number;
    minQuestionTokens: number;
    sources: readonly EvalIndexSource[];
    stats: { questions: number; toolNames: number; ngrams: number };
  },
): Promise<number> {
  await q.query(
    `INSERT INTO decontam_indexes (fingerprint, ngram, min_question_tokens, sources, questions, tool_names, ngrams)
     VALUES ($1::text, $2::int, $3::int, $4::jsonb, $5::int, $6::int, $7::int) ON CONFLICT (fingerprint) DO NOTHING`,
    [
      input.fingerprint,
      input.ngram,
      input.minQuestionTokens,
      JSON.stringify(input.sources),
      input.stats.questions,
      input.stats.toolNames,
      input.stats.ngrams,
    ],
  );
  const { rows } = await q.query<{ id: string }>('SELECT id FROM decontam_indexes WHERE fingerprint = $1::text', [
    input.fingerprint,
  ]);
  return Number(rows[0]!.id);
}

/** Where the samples to check come from; each source's samples are checked once per index, however often listed. */
export interface CandidateSources {
  /** Members of these versions (a version to report on; the seed pool and D_j before an assembly). */
  versionIds: readonly number[];
  /** A loop iteration's new samples: its judged samples, their label corrections and its accepted expansions. */
  iterations?: readonly { loopName: string; iteration: number }[];
  /** Samples of these staging batches (injections waiting for the next version). */
  stagingBatchIds?: readonly string[];
}

/**
 * A session-local list of the candidates not yet checked against the index, paged through by seq. It lives on one
 * connection (a temporary table), so the caller holds one client for the run and calls `dropCandidates` after.
 * Collecting first lets a sample that is in both the seed pool and D_j be checked once, and keeps each page a keyset
 * read instead of re-evaluating the sources per page. Returns how many candidates need checking.
 */
export async function stageUncheckedCandidates(
  client: Queryable,
  input: { indexId: number; sources: CandidateSources },
): Promise<number> {
  await client.query(
    'CREATE TEMPORARY TABLE IF NOT EXISTS decontam_candidates (seq bigint PRIMARY KEY) ON COMMIT PRESERVE ROWS',
  );
  await client.query('TRUNCATE decontam_candidates');
  const unchecked = (seq: string) =>
    `NOT EXISTS (SELECT 1 FROM decontam_checks c WHERE c.index_id = $1::bigint AND c.sample_seq = ${seq})`;
  const add = (select: string, params: unknown[]) =>
    client.query(`INSERT INTO decontam_candidates (seq) ${select} ON CONFLICT DO NOTHING`, [input.indexId, ...params]);
  const { versionIds, iterations = [], stagingBatchIds = [] } = input.sources;
  if (versionIds.length > 0)
    await add(
      `SELECT DISTINCT m.sample_seq FROM dataset_members m
       WHERE m.version_id = ANY($2::bigint[]) AND ${unchecked('m.sample_seq')}`,
      [versionIds],
    );
  for (const { loopName, iteration } of iterations) {
    await add(
      `SELECT s.seq FROM samples s WHERE s.id IN (
         SELECT j.sample_id FROM judgements j WHERE j.loop_name = $2::text AND j.iteration = $3::int
         UNION SELECT j.corrected_sample_id FROM judgements j
           WHERE j.loop_name = $2::text AND j.iteration = $3::int AND j.corrected_sample_id IS NOT NULL
         UNION SELECT e.sample_id FROM expansions e
           WHERE e.loop_name = $2::text AND e.iteration = $3::int AND e.status = 'accepted')
       AND ${unchecked('s.seq')}`,
      [loopName, iteration],
    );
  }
  if (stagingBatchIds.length > 0)
    await add(
      `SELECT s.seq FROM staging_members sm JOIN samples s ON s.id = sm.sample_id
       WHERE sm.batch_id = ANY($2::text[]) AND ${unchecked('s.seq')}`,
      [stagingBatchIds],
    );
  const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM decontam_candidates');
  return Number(rows[0]!.n);
}

export async function dropCandidates(client: Queryable): Promise<void> {
  await client.query('DROP TABLE IF EXISTS pg_temp.decontam_candidates');
}

/** A candidate as the overlap check needs it: its seq, its tool set, and the text of its user messages in order. */
export interface CandidateText {
  seq: number;
  toolsetId: string;
  userTexts: string[];
}

/** The next page of staged candidates after seq `after` (keyset), with their user messages' text. */
export async function candidatePage(
  client: Queryable,
  input: { after: number; limit: number },
): Promise<CandidateText[]> {
  const { rows } = await client.query<{ seq: string; toolset_id: string; user_texts: string[] }>(
    `SELECT c.seq, s.toolset_id,
            ARRAY(SELECT e.value->>'content' FROM json_array_elements(s.messages) WITH ORDINALITY AS e(value, n)
                  WHERE e.value->>'role' = 'user' AND json_typeof(e.value->'content') = 'string' ORDER BY e.n) AS user_texts
     FROM decontam_candidates c JOIN samples s ON s.seq = c.seq
     WHERE c.seq > $1::bigint ORDER BY c.seq LIMIT $2::int`,
    [input.after, input.limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), toolsetId: r.toolset_id, userTexts: r.user_texts }));
}

/** The names of the tools of each tool set (tool sets are shared by many samples, so they are read once each). */
export async function toolsetNames(q: Queryable, ids: readonly string[]): Promise<Map<string, string[]>> {
  if (ids.length === 0) return new Map();
  const { rows } = await q.query<{ id: string; names: string[] }>(
    // Samples store bare function definitions; an OpenAI `{type, function: {name}}` wrapper is read too.
    `SELECT t.id, ARRAY(SELECT coalesce(f.value->>'name', f.value->'function'->>'name')
                        FROM json_array_elements(t.tools) AS f(value)
                        WHERE coalesce(f.value->>'name', f.value->'function'->>'name') IS NOT NULL) AS names
     FROM toolsets t WHERE t.id = ANY($1::text[])`,
    [ids],
  );
  return new Map(rows.map((r) => [r.id, r.names]));
}

/** Stores checks; a sample checked before keeps its row (the result is a function of the index and the sample). */
export async function insertChecks(
  q: Queryable,
  indexId: number,
  checks: readonly ({ seq: number } & SampleOverlap)[],
): Promise<void> {
  await insertRows(
    q,
    'decontam_checks',
    checks.map((c) => ({
      sampleSeq: c.seq,
      toolNames: c.toolNames.length > 0 ? c.toolNames : null,
      ngramQuestions: c.questions.length > 0 ? c.questions : null,
    })),
    { shared: { index_id: indexId }, onConflict: 'ON CONFLICT (index_id, sample_seq) DO NOTHING' },
  );
}

/**
 * SQL that is true when the sample whose seq is `seqColumn` was found to overlap the evaluation sets of the index in
 * `indexIdParam` (n-grams always; tool names when `toolNamesParam` is true). For the member SELECTs of dataset
 * assembly: `AND NOT ${contaminatedSampleSql('s.seq', '$6::bigint', '$7::boolean')}` with the index id and the
 * loop's `decontamination.toolNames` as parameters. A sample that was never checked is not excluded by it, so check
 * every candidate first (activities/decontam.ts `checkAssemblyCandidates`) and let `removeContaminatedMembers`
 * verify the result.
 */
export function contaminatedSampleSql(seqColumn: string, indexIdParam: string, toolNamesParam: string): string {
  return `EXISTS (SELECT 1 FROM decontam_checks dc WHERE dc.index_id = ${indexIdParam} AND dc.sample_seq = ${seqColumn}
    AND (dc.ngram_questions IS NOT NULL OR (${toolNamesParam} AND dc.tool_names IS NOT NULL)))`;
}

/** Thrown when members of a version were never checked against the index that should keep them out. */
export class DecontaminationIncompleteError extends Error {
  constructor(
    readonly versionId: number,
    readonly indexId: number,
    readonly unchecked: number,
  ) {
    super(
      `${unchecked} members of dataset version id ${versionId} were never checked against decontamination index ` +
        `${indexId}; check the assembly's candidates (checkAssemblyCandidates) before assembling`,
    );
    this.name = 'DecontaminationIncompleteError';
  }
}

/**
 * Takes the members that overlap the evaluation sets out of an open version, inside the transaction that builds it,
 * and returns how many were removed, by role. Refuses (DecontaminationIncompleteError, nothing removed) when a member
 * was never checked against the index: leaving it in would pass an unknown sample off as clean. A frozen version
 * cannot be changed (the store's triggers refuse).
 */
export async function removeContaminatedMembers(
  tx: Queryable,
  input: { versionId: number; indexId: number; toolNames: boolean },
): Promise<{ removed: number; byRole: Record<string, number> }> {
  const { rows: missing } = await tx.query<{ n: string }>(
    `SELECT count(*) AS n FROM dataset_members m
     WHERE m.version_id = $1::bigint
       AND NOT EXISTS (SELECT 1 FROM decontam_checks c WHERE c.index_id = $2::bigint AND c.sample_seq = m.sample_seq)`,
    [input.versionId, input.indexId],
  );
  const unchecked = Number(missing[0]!.n);
  if (unchecked > 0) throw new DecontaminationIncompleteError(input.versionId, input.indexId, unchecked);
  const { rows } = await tx.query<{ role: string }>(
    `DELETE FROM dataset_members m WHERE m.version_id = $1::bigint
       AND ${contaminatedSampleSql('m.sample_seq', '$2::bigint', '$3::boolean')}
     RETURNING m.role`,
    [input.versionId, input.indexId, input.toolNames],
  );
  const byRole: Record<string, number> = {};
  for (const { role } of rows) byRole[role] = (byRole[role] ?? 0) + 1;
  return { removed: rows.length, byRole };
}

/** A version's overlap with the evaluation sets of one index. */
export interface DecontamReport {
  versionId: number;
  ref: string;
  iteration: number | null;
  indexId: number;
  fingerprint: string;
  sources: EvalIndexSource[];
  ngram: number;
  members: number;
  toolNameOverlaps: number;
  ngramOverlaps: number;
  bothOverlaps: number;
  byRole: Record<string, { members: number; toolName: number; ngram: number }>;
  topToolNames: { name: string; samples: number }[];
  topQuestions: { question: string; samples: number }[];
  computedAt: string;
}

/**
 * Computes a version's report from its members' checks and stores it (replacing an earlier one for the same index).
 * Members never checked count as members but not as overlaps; `unchecked` says how many there were.
 */
export async function writeVersionReport(
  q: Queryable,
  input: { versionId: number; indexId: number },
): Promise<{ report: DecontamReport; unchecked: number }> {
  const { rows } = await q.query<{ unchecked: number }>(
    `WITH checked AS (
       SELECT m.role, c.sample_seq IS NULL AS unchecked, c.tool_names, c.ngram_questions
       FROM dataset_members m
       LEFT JOIN decontam_checks c ON c.index_id = $2::bigint AND c.sample_seq = m.sample_seq
       WHERE m.version_id = $1::bigint),
     by_role AS (
       SELECT role, count(*)::int AS members, count(tool_names)::int AS tool_name, count(ngram_questions)::int AS ngram
       FROM checked GROUP BY role),
     tools AS (
       SELECT name, count(*)::int AS samples FROM checked, jsonb_array_elements_text(tool_names) AS name
       WHERE tool_names IS NOT NULL GROUP BY name ORDER BY samples DESC, name LIMIT 10),
     questions AS (
       SELECT question, count(*)::int AS samples FROM checked, jsonb_array_elements_text(ngram_questions) AS question
       WHERE ngram_questions IS NOT NULL GROUP BY question ORDER BY samples DESC, question LIMIT 10),
     stored AS (
       INSERT INTO decontam_reports AS r (version_id, index_id, members, tool_name_overlaps, ngram_overlaps,
                                          both_overlaps, by_role, top_tool_names, top_questions)
       SELECT $1::bigint, $2::bigint,
              (SELECT count(*) FROM checked),
              (SELECT count(*) FROM checked WHERE tool_names IS NOT NULL),
              (SELECT count(*) FROM checked WHERE ngram_questions IS NOT NULL),
              (SELECT count(*) FROM checked WHERE tool_names IS NOT NULL AND ngram_questions IS NOT NULL),
              coalesce((SELECT jsonb_object_agg(role, jsonb_build_object('members', members, 'toolName', tool_name,
                                                                          'ngram', ngram)) FROM by_role), '{}'),
              coalesce((SELECT jsonb_agg(jsonb_build_object('name', name, 'samples', samples)
                                         ORDER BY samples DESC, name) FROM tools), '[]'),
              coalesce((SELECT jsonb_agg(jsonb_build_object('question', question, 'samples', samples)
                                         ORDER BY samples DESC, question) FROM questions), '[]')
       ON CONFLICT (version_id, index_id) DO UPDATE SET
         members = excluded.members, tool_name_overlaps = excluded.tool_name_overlaps,
         ngram_overlaps = excluded.ngram_overlaps, both_overlaps = excluded.both_overlaps, by_role = excluded.by_role,
         top_tool_names = excluded.top_tool_names, top_questions = excluded.top_questions, computed_at = now()
       RETURNING 1)
     SELECT (SELECT count(*) FROM checked WHERE unchecked)::int AS unchecked FROM stored`,
    [input.versionId, input.indexId],
  );
  const [report] = await reportsWhere(q, 'r.version_id = $1::bigint AND r.index_id = $2::bigint', [
    input.versionId,
    input.indexId,
  ]);
  return { report: report!, unchecked: rows[0]!.unchecked };
}

/** The stored reports of a loop's versions, by iteration (every index each was checked against). */
export const decontamReportsForLoop = (q: Queryable, loopName: string) =>
  reportsWhere(q, 'v.loop_name = $1::text', [loopName]);

/** The stored reports of one version. */
export const decontamReportsForVersion = (q: Queryable, versionId: number) =>
  reportsWhere(q, 'r.version_id = $1::bigint', [versionId]);

async function reportsWhere(q: Queryable, where: string, params: unknown[]): Promise<DecontamReport[]> {
  const { rows } = await q.query<{
    version_id: string;
    dataset: string;
    version: number;
    iteration: number | null;
    index_id: string;
    fingerprint: string;
    sources: EvalIndexSource[];
    ngram: number;
    members: number;
    tool_name_overlaps: number;
    ngram_overlaps: number;
    both_overlaps: number;
    by_role: DecontamReport['byRole'];
    top_tool_names: DecontamReport['topToolNames'];
    top_questions: DecontamReport['topQuestions'];
    computed_at: Date;
  }>(
    `SELECT r.*, v.dataset, v.version, v.iteration, i.fingerprint, i.sources, i.ngram
     FROM decontam_reports r JOIN dataset_versions v ON v.id = r.version_id JOIN decontam_indexes i ON i.id = r.index_id
     WHERE ${where} ORDER BY v.dataset, v.version, r.index_id`,
    params,
  );
  return rows.map((r) => ({
    versionId: Number(r.version_id),
    ref: `${r.dataset}@${r.version}`,
    iteration: r.iteration,
    indexId: Number(r.index_id),
    fingerprint: r.fingerprint,
    sources: r.sources,
    ngram: r.ngram,
    members: r.members,
    toolNameOverlaps: r.tool_name_overlaps,
    ngramOverlaps: r.ngram_overlaps,
    bothOverlaps: r.both_overlaps,
    byRole: r.by_role,
    topToolNames: r.top_tool_names,
    topQuestions: r.top_questions,
    computedAt: r.computed_at.toISOString(),
  }));
}

/** One member that overlaps, with what it shares. */
export interface OverlappingMember {
  sampleId: string;
  role: string;
  toolNames: string[];
  questions: string[];
}

/** The members of a version that overlap (any kind), in seq order, at most `limit`. */
export async function overlappingMembers(
  q: Queryable,
  input: { versionId: number; indexId: number; limit: number },
): Promise<OverlappingMember[]> {
  const { rows } = await q.query<{
    id: string;
    role: string;
    tool_names: string[] | null;
    ngram_questions: string[] | null;
  }>(
    `SELECT s.id, m.role, c.tool_names, c.ngram_questions
     FROM dataset_members m JOIN decontam_checks c ON c.index_id = $2::bigint AND c.sample_seq = m.sample_seq
     JOIN samples s ON s.seq = m.sample_seq
     WHERE m.version_id = $1::bigint AND (c.tool_names IS NOT NULL OR c.ngram_questions IS NOT NULL)
     ORDER BY m.sample_seq LIMIT $3::int`,
    [input.versionId, input.indexId, input.limit],
  );
  return rows.map((r) => ({
    sampleId: r.id,
    role: r.role,
    toolNames: r.tool_names ?? [],
    questions: r.ngram_questions ?? [],
  }));
}
