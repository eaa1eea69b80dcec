-- The overview's counts in one B-tree ordered by their key (WITHOUT ROWID), instead of a table
-- and a separate index of the same key: a bulk creation adds to thousands of cells per commit,
-- each now found and written once instead of twice. The counts are copied as they are.
CREATE TABLE annotation_density_by_key (
    image           BIGINT  NOT NULL,
    annotation_type BIGINT  NOT NULL,
    col             BIGINT  NOT NULL,
    row_index       BIGINT  NOT NULL,
    count           BIGINT  NOT NULL,
    PRIMARY KEY (image, annotation_type, col, row_index)
) WITHOUT ROWID;
INSERT INTO annotation_density_by_key (image, annotation_type, col, row_index, count)
    SELECT image, annotation_type, col, row_index, count FROM annotation_density;
DROP TABLE annotation_density;
ALTER TABLE annotation_density_by_key RENAME TO annotation_density;
