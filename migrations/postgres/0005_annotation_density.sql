-- The whole-image overview: how many live annotations have their centre in each 1024 x 1024 px
-- cell, per image and type. Coarser grids sum these cells, so an overview never returns more
-- rows than the slide has cells, however many annotations it holds.
CREATE TABLE annotation_density (
    image           BIGINT  NOT NULL,
    annotation_type BIGINT  NOT NULL,
    col             BIGINT  NOT NULL,
    row_index       BIGINT  NOT NULL,
    count           BIGINT  NOT NULL,
    PRIMARY KEY (image, annotation_type, col, row_index)
);
