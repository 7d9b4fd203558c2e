-- EDDE's dedup (db/queries/expansions.ts samplesKnownToLoop) asks, for every generated sample, whether its loop has
-- already accepted it as an expansion. The primary key (loop_name, iteration, seed_sample_id, k) cannot answer that by
-- sample id, so each lookup scanned every expansion row: the expand stage slowed down as it ran (quadratic), from 1.5
-- minutes per 25,000 error seeds at the start to over 10 at 150,000 expansions in the million-sample run of
-- `npm run bench -- scale` (bench/SCALE.md), where one lookup took 470 ms. Partial, as the lookup only counts
-- accepted expansions: with it that lookup takes 0.2 ms.
CREATE INDEX expansions_loop_accepted_sample ON expansions (loop_name, sample_id) WHERE status = 'accepted';
