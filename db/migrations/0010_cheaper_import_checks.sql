-- Cheaper checks for the rows an import writes per sample, guarding the same things.
--
-- A sample id's format was checked with the regular expression '^[0-9a-f]{64}$', which PostgreSQL's engine evaluates
-- slowly (about 6 µs a row, as much as the rest of the samples insert); the same rule as a length and a negated class
-- costs a fraction of that. The constraint keeps its name, so a bad id is refused with the same error.
ALTER TABLE samples DROP CONSTRAINT samples_id_check;
ALTER TABLE samples ADD CONSTRAINT samples_id_check CHECK (length(id) = 64 AND id !~ '[^0-9a-f]');

-- The references an import writes a row of each for, checked once per statement instead of once per row. A foreign
-- key runs one lookup per inserted row (about 4 µs each in PostgreSQL 16), and an import page of 2,000 samples wrote
-- four such references per sample: the sample's toolset, its staging member's batch and sample, and its origin's
-- sample, more than a third of the page's time in the database. A statement-level trigger with a transition table
-- checks the same thing with one anti-join per statement, as dataset_members already does for frozen versions.
--
-- What the foreign keys also guarded on the referenced side stays guarded: samples and toolsets can be neither updated
-- nor deleted (their immutability triggers), samples cannot be truncated while probe results, judgements, expansions
-- and origins' parents still reference them by foreign key, toolsets now refuse TRUNCATE too (below), and a staging
-- batch that members still name cannot be deleted (checked at the end of the DELETE, as NO ACTION did).
ALTER TABLE samples DROP CONSTRAINT samples_toolset_id_fkey;
ALTER TABLE staging_members DROP CONSTRAINT staging_members_batch_id_fkey;
ALTER TABLE staging_members DROP CONSTRAINT staging_members_sample_id_fkey;
ALTER TABLE sample_origins DROP CONSTRAINT sample_origins_sample_id_fkey;

-- TG_ARGV: the referencing column, the referenced table, its key column. Raises foreign_key_violation, as the foreign
-- key did, naming the first key that is not there. Each distinct key is looked up once (a page's samples share a few
-- toolsets and one batch).
CREATE FUNCTION looptool_check_references() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  missing text;
BEGIN
  EXECUTE format(
    'SELECT n.k::text FROM (SELECT DISTINCT %1$I AS k FROM changed_new) n WHERE n.k IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %2$I r WHERE r.%3$I = n.k) LIMIT 1',
    TG_ARGV[0], TG_ARGV[1], TG_ARGV[2]) INTO missing;
  IF missing IS NOT NULL THEN
    RAISE EXCEPTION 'insert or update on table "%" violates its reference to "%": %.% = % is not there',
      TG_TABLE_NAME, TG_ARGV[1], TG_TABLE_NAME, TG_ARGV[0], missing
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER samples_toolset_exists AFTER INSERT ON samples
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('toolset_id', 'toolsets', 'id');
CREATE TRIGGER staging_members_batch_exists AFTER INSERT ON staging_members
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('batch_id', 'staging_batches', 'id');
CREATE TRIGGER staging_members_batch_exists_update AFTER UPDATE ON staging_members
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('batch_id', 'staging_batches', 'id');
CREATE TRIGGER staging_members_sample_exists AFTER INSERT ON staging_members
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('sample_id', 'samples', 'id');
CREATE TRIGGER staging_members_sample_exists_update AFTER UPDATE ON staging_members
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('sample_id', 'samples', 'id');
CREATE TRIGGER sample_origins_sample_exists AFTER INSERT ON sample_origins
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('sample_id', 'samples', 'id');
CREATE TRIGGER sample_origins_sample_exists_update AFTER UPDATE ON sample_origins
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('sample_id', 'samples', 'id');

CREATE TRIGGER toolsets_no_truncate BEFORE TRUNCATE ON toolsets
  FOR EACH STATEMENT EXECUTE FUNCTION looptool_forbid_change();

CREATE FUNCTION looptool_forbid_deleting_named_batches() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  named text;
BEGIN
  SELECT o.id INTO named FROM changed_old o WHERE EXISTS (SELECT 1 FROM staging_members m WHERE m.batch_id = o.id) LIMIT 1;
  IF named IS NOT NULL THEN
    RAISE EXCEPTION 'staging batch % still has members in staging_members', named
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER staging_batches_members_gone AFTER DELETE ON staging_batches
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION looptool_forbid_deleting_named_batches();
CREATE TRIGGER staging_batches_no_truncate BEFORE TRUNCATE ON staging_batches
  FOR EACH STATEMENT EXECUTE FUNCTION looptool_forbid_change();
