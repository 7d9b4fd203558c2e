import type { Queryable } from '../tx.js';
import type { StoredSample } from './samples.js';

/** One page of an import: the samples it accepted, each with the line it came from, and the lines it rejected. */
export interface ImportPage {
  batchId: string;
  /** Accepted samples in file order; a sample may repeat (the same content on two lines). */
  samples: readonly { stored: StoredSample; line: number }[];
  rejections: readonly { line: number; field: string | null; reason: string }[];
}

/**
 * Writes one page of an import in one statement, so atomic without a transaction and one round trip: the tool lists
 * and samples (content-addressed, existing ones skipped), the staging members with their lines, the rejected lines,
 * and the batch's proof of life (`updated_at`). A member is also its sample's origin (`all_sample_origins`,
 * db/migrations/0012_import_origins_from_members.sql). References between these rows are checked at the end of the
 * statement, so the sibling inserts see each other's rows.
 *
 * What it stores is what the separate writers stored (db/queries/samples.ts insertSamples, staging.ts
 * addStagingMembers, addStagingRejections and touchStagingBatch): a sample repeated within the page is
 * written once, with its first line, as their ON CONFLICT DO NOTHING kept the first; across pages and imports the
 * natural keys skip what is there. Rows go in sample id order, so concurrent imports of the same content lock them in
 * one order and cannot deadlock.
 *
 * The JSON columns travel as one text per column, the rows joined by newlines and split by `string_to_array`: a
 * canonical JSON text has no raw newline (JSON escapes every control character in strings, and canonical JSON has no
 * whitespace), and a `text[]` parameter would make node-postgres quote and escape every element and PostgreSQL undo it,
 * a measurable part of an import's time at a kilobyte a sample.
 *
 * Returns how many samples were new to the store and how many were new to the batch (the rest repeat a line read
 * earlier in the same file).
 */
export async function writeImportPage(q: Queryable, page: ImportPage): Promise<{ newToStore: number; staged: number }> {
  const byId = new Map<string, { stored: StoredSample; line: number }>();
  for (const row of page.samples) if (!byId.has(row.stored.id)) byId.set(row.stored.id, row);
  const rows = [...byId.values()].sort((a, b) => (a.stored.id < b.stored.id ? -1 : 1));
  const toolsets = new Map<string, StoredSample>();
  for (const { stored } of rows) if (!toolsets.has(stored.toolsetId)) toolsets.set(stored.toolsetId, stored);
  const sortedToolsets = [...toolsets.values()].sort((a, b) => (a.toolsetId < b.toolsetId ? -1 : 1));
  const lines = (values: readonly string[]) => {
    // Never true of what db/sample-codec.ts writes; checked because a newline would shift every row after it.
    if (values.some((value) => value.includes('\n'))) throw new Error('a stored JSON text holds a raw newline');
    return values.join('\n');
  };
  const { rows: result } = await q.query<{ new_to_store: number; staged: number }>(
    `WITH new_toolsets AS (
       INSERT INTO toolsets (id, tools, n_tools)
       SELECT id, tools::json, n_tools
       FROM unnest(string_to_array($2::text, E'\\n'), string_to_array($3::text, E'\\n'), $4::int[]) AS u(id, tools, n_tools)
       ON CONFLICT (id) DO NOTHING
     ),
     new_samples AS (
       INSERT INTO samples (id, toolset_id, messages, target)
       SELECT id, toolset_id, messages::json, target::json
       FROM unnest(string_to_array($5::text, E'\\n'), string_to_array($6::text, E'\\n'), string_to_array($7::text, E'\\n'),
                   string_to_array($8::text, E'\\n')) AS u(id, toolset_id, messages, target)
       ON CONFLICT (id) DO NOTHING
       RETURNING 1
     ),
     page AS (SELECT * FROM unnest(string_to_array($5::text, E'\\n'), $9::int[]) AS u(sample_id, line)),
     members AS (
       INSERT INTO staging_members (batch_id, sample_id, line)
       SELECT $1::text, sample_id, line FROM page
       ON CONFLICT (batch_id, sample_id) DO NOTHING
       RETURNING 1
     ),
     rejections AS (
       INSERT INTO staging_rejections (batch_id, line, field, reason)
       SELECT $1::text, line, field, reason FROM unnest($10::int[], $11::text[], $12::text[]) AS u(line, field, reason)
       ON CONFLICT (batch_id, line) DO NOTHING
     ),
     touched AS (UPDATE staging_batches SET updated_at = now() WHERE id = $1::text AND status = 'loading')
     SELECT (SELECT count(*) FROM new_samples)::int AS new_to_store, (SELECT count(*) FROM members)::int AS staged`,
    [
      page.batchId,
      lines(sortedToolsets.map((s) => s.toolsetId)),
      lines(sortedToolsets.map((s) => s.toolsJson)),
      sortedToolsets.map((s) => s.nTools),
      lines(rows.map((r) => r.stored.id)),
      lines(rows.map((r) => r.stored.toolsetId)),
      lines(rows.map((r) => r.stored.messagesJson)),
      lines(rows.map((r) => r.stored.targetJson)),
      rows.map((r) => r.line),
      page.rejections.map((r) => r.line),
      page.rejections.map((r) => r.field),
      page.rejections.map((r) => r.reason),
    ],
  );
  return { newToStore: result[0]?.new_to_store ?? 0, staged: result[0]?.staged ?? 0 };
}
