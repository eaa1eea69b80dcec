-- The store's default export format (`format=exact`, made on first start) belongs to no team.
-- SQLite cannot drop a column's NOT NULL, so the table is rebuilt, columns in their order.
CREATE TABLE export_formats_new (
    id                  INTEGER PRIMARY KEY,
    team                INTEGER,
    creator             INTEGER NOT NULL,
    name                TEXT    NOT NULL,
    public              INTEGER NOT NULL,
    base_format         TEXT    NOT NULL,
    image_format        TEXT    NOT NULL,
    annotation_format   TEXT    NOT NULL,
    vector_format       TEXT    NOT NULL,
    not_in_image_format TEXT    NOT NULL,
    name_format         TEXT    NOT NULL,
    min_verifications   INTEGER NOT NULL,
    image_aggregation   INTEGER NOT NULL,
    include_blurred     INTEGER NOT NULL,
    include_concealed   INTEGER NOT NULL,
    deleted             INTEGER NOT NULL,
    last_change_time    INTEGER NOT NULL,
    version             INTEGER NOT NULL
);
INSERT INTO export_formats_new SELECT id, team, creator, name, public, base_format, image_format,
    annotation_format, vector_format, not_in_image_format, name_format, min_verifications,
    image_aggregation, include_blurred, include_concealed, deleted, last_change_time, version
FROM export_formats;
DROP TABLE export_formats;
ALTER TABLE export_formats_new RENAME TO export_formats;
CREATE UNIQUE INDEX export_formats_name ON export_formats (name) WHERE deleted = 0;
