-- The spatial index, second form: the R*Tree holds the loose cells of a grid, one entry per
-- cell ever used, instead of one per annotation and one per version (see
-- exact-projections' `spatial_cell`). An R*Tree insert cost more than the rest of a creation,
-- and a tree of one image's boxes degenerated: its image dimension had no extent, so every
-- box had zero volume and new entries went to the first child. Cell boxes span their image
-- by ±0.5.
DROP TRIGGER annotations_rtree_insert;
DROP TRIGGER annotations_rtree_update;
DROP TRIGGER annotations_rtree_delete;
DROP TABLE annotations_rtree;
DROP TRIGGER annotation_history_rtree_insert;
DROP TRIGGER annotation_history_rtree_close;
DROP TRIGGER annotation_history_rtree_delete;
DROP TABLE annotation_history_rtree;

ALTER TABLE annotations ADD COLUMN cell INTEGER;
ALTER TABLE annotation_history ADD COLUMN cell INTEGER;
-- With the box, so that candidates outside the window are dropped without reading their row.
CREATE INDEX annotations_by_cell ON annotations (cell, min_x, max_x, min_y, max_y);
CREATE INDEX annotation_history_by_cell ON annotation_history (cell, valid_from);

CREATE TABLE annotation_cells (
    cell  INTEGER PRIMARY KEY,
    image INTEGER NOT NULL,
    min_x REAL NOT NULL, min_y REAL NOT NULL, max_x REAL NOT NULL, max_y REAL NOT NULL
);
CREATE VIRTUAL TABLE annotation_cells_rtree USING rtree (cell, min_x, max_x, min_y, max_y, min_image, max_image);
CREATE TRIGGER annotation_cells_rtree_insert AFTER INSERT ON annotation_cells
BEGIN
    INSERT INTO annotation_cells_rtree
    VALUES (new.cell, new.min_x, new.max_x, new.min_y, new.max_y, new.image - 0.5, new.image + 0.5);
END;
CREATE TRIGGER annotation_cells_rtree_delete AFTER DELETE ON annotation_cells
BEGIN
    DELETE FROM annotation_cells_rtree WHERE cell = old.cell;
END;

-- Every row needs its cell, which only the projection computes: the annotations read model is
-- emptied and its checkpoint dropped, so that the store rebuilds it from the log when it opens.
DELETE FROM annotations;
DELETE FROM verifications;
DELETE FROM annotation_history;
DELETE FROM annotation_density;
DELETE FROM annotation_statistics;
DELETE FROM projection_checkpoints WHERE name = 'annotations';
