-- The references the probe writes a row of each for, checked once per statement instead of once per row, as 0010 did
-- for the import's. Every probed sample writes a probe result naming its loop and its sample, and every request a
-- ledger row naming its loop. A foreign key checks each row on its own: a lookup that also locks the referenced row
-- (FOR KEY SHARE), so the pages that four activities write at once each lock the same loops row, over and over, and a
-- sample's row is dirtied by the lock. Those checks were about a fifth of PostgreSQL's CPU per probed sample
-- (`npm run bench -- stages`, 60,000 samples, runs alternated: 79-85 µs a sample with the foreign keys, 63-70 with no
-- checks at all, 61-73 with the checks below).
--
-- The statement-level checks (0010's looptool_check_references) refuse the same rows with the same error code. What the
-- foreign keys guarded on the referenced side stays guarded: samples can be neither updated nor deleted (their
-- immutability trigger) nor truncated (judgements and expansions still reference them by foreign key), loops cannot be
-- truncated (their other referencing tables' foreign keys), and deleting or renaming a loop that probe results or
-- ledger rows still name is refused at the end of the statement, as NO ACTION did. What no check here replaces is the
-- foreign key's row lock: a loop deleted by hand while its probe is writing could leave that page's rows behind
-- (looptool never deletes or renames a loop; samples cannot be deleted at all).
ALTER TABLE probe_results DROP CONSTRAINT probe_results_loop_name_fkey;
ALTER TABLE probe_results DROP CONSTRAINT probe_results_sample_id_fkey;
ALTER TABLE model_calls DROP CONSTRAINT model_calls_loop_name_fkey;

CREATE TRIGGER probe_results_loop_exists AFTER INSERT ON probe_results
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('loop_name', 'loops', 'name');
CREATE TRIGGER probe_results_loop_exists_update AFTER UPDATE ON probe_results
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('loop_name', 'loops', 'name');
CREATE TRIGGER probe_results_sample_exists AFTER INSERT ON probe_results
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('sample_id', 'samples', 'id');
CREATE TRIGGER probe_results_sample_exists_update AFTER UPDATE ON probe_results
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('sample_id', 'samples', 'id');
CREATE TRIGGER model_calls_loop_exists AFTER INSERT ON model_calls
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('loop_name', 'loops', 'name');
CREATE TRIGGER model_calls_loop_exists_update AFTER UPDATE ON model_calls
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_references('loop_name', 'loops', 'name');

-- TG_ARGV: this table's key column, a referencing table, its column. Raises foreign_key_violation, as the foreign key
-- did, naming the first key that a deletion or an update took away while the referencing table still names it.
CREATE FUNCTION looptool_check_unreferenced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  named text;
BEGIN
  EXECUTE format(
    'SELECT o.k::text FROM (SELECT DISTINCT %1$I AS k FROM changed_old) o WHERE NOT EXISTS (SELECT 1 FROM %4$I.%5$I t WHERE t.%1$I = o.k) AND EXISTS (SELECT 1 FROM %2$I r WHERE r.%3$I = o.k) LIMIT 1',
    TG_ARGV[0], TG_ARGV[1], TG_ARGV[2], TG_TABLE_SCHEMA, TG_TABLE_NAME) INTO named;
  IF named IS NOT NULL THEN
    RAISE EXCEPTION 'update or delete on table "%" leaves %.% = % without its row', TG_TABLE_NAME, TG_ARGV[1],
      TG_ARGV[2], named
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER loops_probe_results_gone AFTER DELETE ON loops
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_unreferenced('name', 'probe_results', 'loop_name');
CREATE TRIGGER loops_probe_results_gone_update AFTER UPDATE ON loops
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_unreferenced('name', 'probe_results', 'loop_name');
CREATE TRIGGER loops_model_calls_gone AFTER DELETE ON loops
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_unreferenced('name', 'model_calls', 'loop_name');
CREATE TRIGGER loops_model_calls_gone_update AFTER UPDATE ON loops
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT
  EXECUTE FUNCTION looptool_check_unreferenced('name', 'model_calls', 'loop_name');
