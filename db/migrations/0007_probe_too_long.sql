-- Length-aware probing: a sample whose prompt is longer than the policy's context (less the reply budget) or the
-- trainer's prompt budget is recorded as 'too_long' without being sent. Before, the server's 400 became a parse error,
-- then an error seed by rule, kept every round and expanded with the same overlong tool list, while verl silently
-- dropped the prompt from training.
ALTER TABLE probe_results DROP CONSTRAINT probe_results_outcome_check;
ALTER TABLE probe_results ADD CONSTRAINT probe_results_outcome_check
  CHECK (outcome IN ('match', 'mismatch', 'parse_error', 'too_long'));
