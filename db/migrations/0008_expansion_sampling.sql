-- How each expansion was drawn (EDDE, LOOPTOOL-METHOD.md §5.3): the generator's sampling as sent with the request
-- (temperature, top_p, vLLM's top_k, presence_penalty, max_tokens; `expand` in the loop config) and the validation
-- judge's prompt version beside the generator's (`prompt_version`), so a dataset's expansions can be told apart by the
-- settings that produced them. Rows written before this migration did not record them: NULL, never a guessed default.
-- validator_prompt_version is also NULL when the loop skipped the LLM tier (`expand.validate: false`).
ALTER TABLE expansions
  ADD COLUMN temperature              double precision,
  ADD COLUMN top_p                    double precision,
  ADD COLUMN top_k                    integer,
  ADD COLUMN presence_penalty         double precision,
  ADD COLUMN max_tokens               integer CHECK (max_tokens > 0),
  ADD COLUMN validator_prompt_version text;

COMMENT ON COLUMN expansions.prompt_version IS 'The generator prompt version (activities/llm/prompts/generator.v<N>.md).';
COMMENT ON COLUMN expansions.validator_prompt_version IS 'The validation judge prompt version; NULL when the LLM tier was skipped.';
COMMENT ON COLUMN expansions.top_k IS 'vLLM top_k sent as an extra body field; -1 means disabled.';
