-- Files attached to annotations (catalog projection), EXACT's AnnotationMediaFile.
CREATE TABLE annotation_media_files (
    id              BIGINT PRIMARY KEY,
    annotation      BIGINT NOT NULL,
    name            TEXT    NOT NULL,
    media_file_type BIGINT NOT NULL,
    file            TEXT    NOT NULL,
    checksum        TEXT    NOT NULL,
    size            BIGINT NOT NULL,
    deleted         BOOLEAN NOT NULL,
    time            BIGINT NOT NULL
);
CREATE INDEX annotation_media_files_by_annotation ON annotation_media_files (annotation);
