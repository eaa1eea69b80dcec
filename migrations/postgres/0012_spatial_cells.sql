-- SQLite's spatial index moved to cells of a loose grid (see exact-projections'
-- `spatial_cell`); the projection writes the same rows on both backends, so PostgreSQL keeps
-- the column too, though its GiST indexes on the boxes answer its viewport queries.
ALTER TABLE annotations ADD COLUMN cell BIGINT;
ALTER TABLE annotation_history ADD COLUMN cell BIGINT;

-- Every row needs its cell, which only the projection computes: the annotations read model is
-- emptied and its checkpoint dropped, so that the store rebuilds it from the log when it opens.
DELETE FROM annotations;
DELETE FROM verifications;
DELETE FROM annotation_history;
DELETE FROM annotation_density;
DELETE FROM annotation_statistics;
DELETE FROM projection_checkpoints WHERE name = 'annotations';
