-- The batch plan of each stage of each iteration: seq ranges over the rows the stage works through. The workflow fans
-- out over batch numbers only, so its history stays small at a million samples, and a plan written once is the plan
-- every retry and every continue-as-new run sees.
CREATE TABLE stage_batches (
  loop_name  text NOT NULL REFERENCES loops (name),
  iteration  integer NOT NULL,
  stage      text NOT NULL CHECK (stage IN ('probe', 'judge', 'expand')),
  batch_no   integer NOT NULL CHECK (batch_no >= 0),
  after_seq  bigint NOT NULL,
  last_seq   bigint NOT NULL CHECK (last_seq > after_seq),
  PRIMARY KEY (loop_name, iteration, stage, batch_no)
);
