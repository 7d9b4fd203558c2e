-- One row per loop: the durable name a user starts, watches and stops. Temporal owns progress (the workflow
-- `loop/<name>`); this row is the anchor that every dataset version, stage result and ledger entry hangs from.
CREATE TABLE loops (
  name         text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  config       jsonb NOT NULL,
  config_hash  text NOT NULL,
  workflow_id  text NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE loops IS 'A LoopTool loop; its progress lives in the Temporal workflow named by workflow_id.';
COMMENT ON COLUMN loops.config_hash IS 'sha256 of the canonical JSON of config: versions and runs record it to show which config produced them.';
