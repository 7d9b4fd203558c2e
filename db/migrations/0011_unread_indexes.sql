-- Two indexes fewer, for cheaper writes of versions and imports. Neither was read: every query finds members by version
-- and samples by id (db/queries/), and samples reach their tool lists by the toolsets' primary key.
--
-- dataset_members_sample (sample_seq alone) was written for every member of every version. The one query that asks
-- which of a loop's versions hold a sample joins those versions' members by the primary key, whose leading column is
-- the version. Each inherited member cost a second index entry, placed among the same sample's entries of every earlier
-- version (a descent to a random page each, where the primary key's entries of a new version all go to its right
-- edge): about a seventh of building a 1,000,000-member version (`npm run bench -- store`).
DROP INDEX IF EXISTS dataset_members_sample;

-- samples_toolset (toolset_id) was written for every imported or generated sample, a 64-character key at a random
-- place. Toolsets are never deleted or changed (their triggers), so nothing needs to find the samples of a toolset.
DROP INDEX IF EXISTS samples_toolset;
