-- Staging batches whose import died part way (killed, crashed, the machine rebooted) stayed 'loading' forever, looking
-- like imports still running. They are now expired: status 'expired', set by the next import (or `looptool data
-- staging`) once the batch's loader is certainly gone (same host, process no longer running) or it has not written
-- for longer than the configured age. An expired batch is never merged; its rows stay, as the record of what was read.

ALTER TABLE staging_batches DROP CONSTRAINT staging_batches_status_check;
ALTER TABLE staging_batches ADD CONSTRAINT staging_batches_status_check
  CHECK (status IN ('loading', 'ready', 'consumed', 'expired'));

-- Who loads the batch (the import's host and process id), so another process can tell a live load from a dead one
-- without waiting out the age; updated_at moves with every flushed page, so a long import is not taken for abandoned.
-- Batches from before this migration have no loader: only their age can expire them.
ALTER TABLE staging_batches
  ADD COLUMN loader_host text,
  ADD COLUMN loader_pid  integer,
  ADD COLUMN updated_at  timestamptz NOT NULL DEFAULT now(),
  ADD COLUMN expired_at  timestamptz,
  ADD COLUMN expiry_reason text;

UPDATE staging_batches SET updated_at = created_at;

CREATE INDEX staging_batches_loading ON staging_batches (updated_at) WHERE status = 'loading';

COMMENT ON COLUMN staging_batches.loader_pid IS 'Process id of the import loading the batch, on loader_host.';
COMMENT ON COLUMN staging_batches.updated_at IS 'When the loader last wrote to the batch (each flushed page).';
COMMENT ON COLUMN staging_batches.expiry_reason IS 'Why an expired batch was expired (loader gone, or too old).';
