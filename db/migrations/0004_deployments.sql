-- What each iteration's policy was served as: the model name the probe and evaluation call, the checkpoint behind it
-- and how it got onto the servers (a hot-loaded LoRA adapter or a restart on full weights). A table of its own rather
-- than columns on training_runs: deployment is a separate step with its own retries, a loop that probes the base
-- model first has an iteration without one, and the row is what deploy checks before serving a name again (a name
-- once bound to a checkpoint is never rebound to other weights).
CREATE TABLE deployments (
  loop_name        text NOT NULL REFERENCES loops (name),
  iteration        integer NOT NULL CHECK (iteration > 0),
  served_model     text NOT NULL UNIQUE,
  kind             text NOT NULL CHECK (kind IN ('full', 'lora')),
  checkpoint_path  text NOT NULL,
  base_urls        text[] NOT NULL CHECK (cardinality(base_urls) > 0),
  deployed_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (loop_name, iteration)
);

COMMENT ON TABLE deployments IS 'The served model of each iteration: written by the deploy activity once every policy server lists it.';
COMMENT ON COLUMN deployments.base_urls IS 'The policy servers (OpenAI base URLs) that serve it.';
COMMENT ON COLUMN deployments.deployed_at IS 'When a deploy last confirmed it on every server (a retried deploy refreshes it).';
