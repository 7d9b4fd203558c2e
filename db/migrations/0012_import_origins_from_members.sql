-- An imported or injected sample's origin is its staging member, no longer a row of its own in sample_origins.
--
-- Every page of an import wrote each sample's origin {batch, file, line} to sample_origins, next to the staging member
-- (batch, sample, line) that already said the same: the file is the batch's source. That second row, with its two
-- indexes, its two per-row foreign-key events and its reference check, was 40% of an import's time in PostgreSQL
-- (100,000 samples, the page written with and without it, alternated: 50–57 → 31–33 µs of PostgreSQL CPU a sample).
-- The member now is the record: all_sample_origins (below) reads a sample's origins from both tables, and every
-- reader of origins (db/queries/origins.ts, versions.ts) reads it.
--
-- What changes for a reader: a sample imported by two batches has two import origins (each batch and line), where the
-- first import alone was kept; origins are ordered by when they were recorded (a batch's import by when the batch was
-- opened), as they were by insertion order.

-- Keyed by sample first, so a sample's imports are found by the primary key; a batch's members by their own index,
-- where every entry shares the batch's key (deduplicated to a posting list, appended at its end).
ALTER TABLE staging_members DROP CONSTRAINT staging_members_pkey;
ALTER TABLE staging_members ADD PRIMARY KEY (sample_id, batch_id);
CREATE INDEX staging_members_batch ON staging_members (batch_id);

-- The origins written by imports so far say what their members say: dropped, so none is read twice.
DELETE FROM sample_origins o USING staging_members m
WHERE o.kind IN ('seed_import', 'injection') AND o.parent_sample_id IS NULL AND m.sample_id = o.sample_id
  AND m.batch_id = o.detail ->> 'batch';

-- Every origin of every sample: those recorded in sample_origins (loop-made ones, and imports recorded there directly)
-- and one per staging member, shaped as the import wrote it ({batch, file, line}, the file without its folder).
-- `recorded_at` orders a sample's origins, `id` (null for members) those recorded in the same transaction.
CREATE VIEW all_sample_origins AS
  SELECT o.sample_id, o.kind, o.parent_sample_id, o.loop_name, o.iteration, o.detail, o.created_at AS recorded_at, o.id
  FROM sample_origins o
  UNION ALL
  SELECT m.sample_id,
    CASE b.purpose WHEN 'import' THEN 'seed_import' ELSE 'injection' END,
    NULL, NULL, NULL,
    jsonb_build_object('batch', b.id, 'file', regexp_replace(b.source, '^.*/', ''), 'line', m.line),
    b.created_at, NULL
  FROM staging_members m JOIN staging_batches b ON b.id = m.batch_id;
