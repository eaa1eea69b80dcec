-- Files attached to annotations (catalog projection), EXACT's AnnotationMediaFile.
CREATE TABLE annotation_media_files (
    id              INTEGER PRIMARY KEY,
    annotation      INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    media_file_type INTEGER NOT NULL,
    file            TEXT    NOT NULL,
    checksum        TEXT    NOT NULL,
    size            INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    time            INTEGER NOT NULL
);
CREATE INDEX annotation_media_files_by_annotation ON annotation_media_files (annotation);
