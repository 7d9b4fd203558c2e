-- Decontamination (LOOPTOOL-METHOD.md §6.3, §10.4 item 9): tool-name and n-gram overlap of samples with the evaluation
-- sets, stored per (evaluation index, sample) so a check is made once and every version, loop and command that uses
-- the same evaluation files and settings reuses it; and a summary per (version, index) for reports.

-- An evaluation index: the questions of some evaluation files under some overlap settings. Its fingerprint hashes the
-- algorithm, the settings and the files' contents (core/decontam.ts evalIndexFingerprint), so a changed file or setting
-- is a new index and stored checks are never applied to questions they were not made against.
CREATE TABLE decontam_indexes (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  fingerprint          text NOT NULL UNIQUE CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
  ngram                integer NOT NULL CHECK (ngram > 0),
  min_question_tokens  integer NOT NULL CHECK (min_question_tokens > 0),
  -- [{set, file, sha256, questions}]: what went in, as configured.
  sources              jsonb NOT NULL CHECK (jsonb_typeof(sources) = 'array'),
  questions            integer NOT NULL CHECK (questions >= 0),
  tool_names           integer NOT NULL CHECK (tool_names >= 0),
  ngrams               integer NOT NULL CHECK (ngrams >= 0),
  created_at           timestamptz NOT NULL DEFAULT now()
);

-- One row per checked sample, clean ones included: a row is what makes a rerun skip the sample. Overlaps are JSON
-- arrays of strings (NULL: none), so a clean row is a few bytes and "overlaps" is an IS NOT NULL test. No foreign key
-- on sample_seq, as in dataset_members: samples are never deleted, and a million-row check would pay a lookup per row.
CREATE TABLE decontam_checks (
  index_id         bigint NOT NULL REFERENCES decontam_indexes (id),
  sample_seq       bigint NOT NULL,
  -- Normalised tool names the sample offers that evaluation questions offer too.
  tool_names       jsonb CHECK (tool_names IS NULL OR jsonb_typeof(tool_names) = 'array'),
  -- `<set>/<question id>` of the questions whose user text shares an n-gram with the sample's (at most 8).
  ngram_questions  jsonb CHECK (ngram_questions IS NULL OR jsonb_typeof(ngram_questions) = 'array'),
  PRIMARY KEY (index_id, sample_seq)
);

-- A version's overlap under one index, computed from the checks of its members (db/queries/decontam.ts). Recomputed
-- in place when asked again (an open version may have changed since).
CREATE TABLE decontam_reports (
  version_id          bigint NOT NULL REFERENCES dataset_versions (id),
  index_id            bigint NOT NULL REFERENCES decontam_indexes (id),
  members             integer NOT NULL CHECK (members >= 0),
  tool_name_overlaps  integer NOT NULL CHECK (tool_name_overlaps >= 0),
  ngram_overlaps      integer NOT NULL CHECK (ngram_overlaps >= 0),
  both_overlaps       integer NOT NULL CHECK (both_overlaps >= 0),
  -- {role: {members, toolName, ngram}}
  by_role             jsonb NOT NULL,
  -- [{name, samples}] and [{question, samples}], the most frequent first (10 each).
  top_tool_names      jsonb NOT NULL,
  top_questions       jsonb NOT NULL,
  computed_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (version_id, index_id)
);
