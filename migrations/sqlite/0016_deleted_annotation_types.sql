-- A deleted annotation type stays a row (its annotations name it in the history) but leaves
-- lists, and its name may be used again: uniqueness holds among live types only. SQLite
-- cannot drop a table's inline UNIQUE, so the table is rebuilt.
CREATE TABLE annotation_types_new (
    id               INTEGER PRIMARY KEY,
    product          INTEGER NOT NULL,
    name             TEXT    NOT NULL,
    vector_type      INTEGER NOT NULL,
    node_count       INTEGER NOT NULL,
    color_code       TEXT    NOT NULL,
    default_width    INTEGER NOT NULL,
    default_height   INTEGER NOT NULL,
    sort_order       INTEGER NOT NULL,
    closed           INTEGER NOT NULL,
    area_hit_test    INTEGER NOT NULL,
    enable_concealed INTEGER NOT NULL,
    enable_blurred   INTEGER NOT NULL,
    active           INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    deleted          INTEGER NOT NULL DEFAULT 0
);
INSERT INTO annotation_types_new (id, product, name, vector_type, node_count, color_code,
    default_width, default_height, sort_order, closed, area_hit_test, enable_concealed,
    enable_blurred, active, version)
SELECT id, product, name, vector_type, node_count, color_code, default_width, default_height,
    sort_order, closed, area_hit_test, enable_concealed, enable_blurred, active, version
FROM annotation_types;
DROP TABLE annotation_types;
ALTER TABLE annotation_types_new RENAME TO annotation_types;
CREATE UNIQUE INDEX annotation_types_live_name ON annotation_types (product, name) WHERE deleted = 0;
