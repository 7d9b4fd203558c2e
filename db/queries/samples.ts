import type { Queryable } from '../tx.js';

/**
 * A sample as the store keeps it: canonical JSON text for each part, stored and read back byte for byte (so `5` and
 * `5.0` survive, which BFCL's checker tells apart; node-postgres would parse JSON columns into JS numbers and lose
 * that), plus the content hashes.
 * `db/sample-codec.ts` builds these from `core/` samples; nothing else should construct them.
 */
export interface StoredSample {
  /** sha256 hex of the canonical JSON of {tools, messages, target}. */
  id: string;
  /** sha256 hex of the canonical JSON of the tools list. */
  toolsetId: string;
  toolsJson: string;
  messagesJson: string;
  targetJson: string;
  nTools: number;
}

/** The columns that rebuild a StoredSample, named as its fields; JSON comes back as text so nothing is lost in a JS number. */
export const SAMPLE_COLUMNS = `s.id, s.toolset_id AS "toolsetId", t.tools::text AS "toolsJson", s.messages::text AS "messagesJson",
  s.target::text AS "targetJson", t.n_tools AS "nTools"`;

/**
 * Writes samples and their tool lists in two set-based statements. Idempotent: content-addressed rows that exist are
 * skipped (ON CONFLICT DO NOTHING), so a retried batch adds nothing and concurrent writers of the same samples neither
 * duplicate nor deadlock (rows are written in id order). Returns the ids this call actually inserted.
 */
export async function insertSamples(q: Queryable, samples: readonly StoredSample[]): Promise<string[]> {
  if (samples.length === 0) return [];
  const byId = new Map(samples.map((s) => [s.id, s]));
  const unique = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const toolsets = new Map<string, StoredSample>();
  for (const sample of unique) if (!toolsets.has(sample.toolsetId)) toolsets.set(sample.toolsetId, sample);
  const sortedToolsets = [...toolsets.values()].sort((a, b) => (a.toolsetId < b.toolsetId ? -1 : 1));
  await q.query(
    `INSERT INTO toolsets (id, tools, n_tools)
     SELECT id, tools, n_tools FROM unnest($1::text[], $2::json[], $3::int[]) AS u(id, tools, n_tools)
     ON CONFLICT (id) DO NOTHING`,
    [
      sortedToolsets.map((s) => s.toolsetId),
      sortedToolsets.map((s) => s.toolsJson),
      sortedToolsets.map((s) => s.nTools),
    ],
  );
  const { rows } = await q.query<{ id: string }>(
    `INSERT INTO samples (id, toolset_id, messages, target)
     SELECT id, toolset_id, messages, target
     FROM unnest($1::text[], $2::text[], $3::json[], $4::json[]) AS u(id, toolset_id, messages, target)
     ON CONFLICT (id) DO NOTHING
     RETURNING id`,
    [
      unique.map((s) => s.id),
      unique.map((s) => s.toolsetId),
      unique.map((s) => s.messagesJson),
      unique.map((s) => s.targetJson),
    ],
  );
  return rows.map((r) => r.id);
}

/** Reads samples by id, in the order asked; ids that do not exist are left out. */
export async function getSamples(q: Queryable, ids: readonly string[]): Promise<StoredSample[]> {
  if (ids.length === 0) return [];
  const { rows } = await q.query<StoredSample>(
    `SELECT ${SAMPLE_COLUMNS} FROM samples s JOIN toolsets t ON t.id = s.toolset_id WHERE s.id = ANY($1::text[])`,
    [ids],
  );
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** Resolves a (possibly abbreviated, at least 8 hex digits) sample id to the full one; undefined when none or ambiguous. */
export async function resolveSampleId(q: Queryable, prefix: string): Promise<string | undefined> {
  if (!/^[0-9a-f]{8,64}$/.test(prefix)) return undefined;
  const { rows } = await q.query<{ id: string }>(
    `SELECT id FROM samples WHERE id >= $1::text AND id < $1::text || 'g' ORDER BY id LIMIT 2`,
    [prefix],
  );
  return rows.length === 1 ? rows[0]!.id : undefined;
}
