-- Read models of the annotations projection (exact-projections). Derived from the log: a
-- rebuild drops their rows and replays every event.

CREATE TABLE annotations (
    id                BIGINT  PRIMARY KEY,
    image             BIGINT  NOT NULL,
    annotation_type   BIGINT  NOT NULL,
    vector            TEXT,                 -- EXACT's JSON vector; NULL: not in image / global
    description       TEXT    NOT NULL,
    meta_data         TEXT,                 -- JSON
    concealed         BOOLEAN NOT NULL,
    blurred           BOOLEAN NOT NULL,
    deleted           BOOLEAN NOT NULL,
    unique_identifier TEXT    NOT NULL UNIQUE,
    user_id           BIGINT  NOT NULL,     -- creator
    last_editor       BIGINT,
    time              BIGINT  NOT NULL,     -- microseconds since 1970
    last_edit_time    BIGINT  NOT NULL,
    min_x DOUBLE PRECISION, min_y DOUBLE PRECISION, max_x DOUBLE PRECISION, max_y DOUBLE PRECISION,
    frame             BIGINT,
    version           BIGINT  NOT NULL,     -- the stream's version: the ETag
    position          BIGINT  NOT NULL,     -- the log position of the last change
    -- Viewport queries: a GiST index over the bounding box.
    bbox box GENERATED ALWAYS AS (box(point(min_x, min_y), point(max_x, max_y))) STORED
);
CREATE INDEX annotations_by_image ON annotations (image, annotation_type);
CREATE INDEX annotations_bbox ON annotations USING gist (bbox);

CREATE TABLE verifications (
    annotation BIGINT  NOT NULL,
    user_id    BIGINT  NOT NULL,
    verified   BOOLEAN NOT NULL,
    time       BIGINT  NOT NULL,
    PRIMARY KEY (annotation, user_id)
);

-- Every version of every annotation: valid from the position that made it until the position
-- that replaced it (NULL: still current). Answers "as of position P" without replaying.
CREATE TABLE annotation_history (
    id              BIGINT  NOT NULL,
    version         BIGINT  NOT NULL,
    valid_from      BIGINT  NOT NULL,
    valid_to        BIGINT,
    event_type      TEXT    NOT NULL,
    actor           BIGINT,
    recorded_at     BIGINT  NOT NULL,
    reason          TEXT,
    image           BIGINT  NOT NULL,
    annotation_type BIGINT  NOT NULL,
    vector          TEXT,
    description     TEXT    NOT NULL,
    meta_data       TEXT,
    concealed       BOOLEAN NOT NULL,
    blurred         BOOLEAN NOT NULL,
    deleted         BOOLEAN NOT NULL,
    min_x DOUBLE PRECISION, min_y DOUBLE PRECISION, max_x DOUBLE PRECISION, max_y DOUBLE PRECISION,
    PRIMARY KEY (id, version)
);
CREATE INDEX annotation_history_as_of ON annotation_history (image, valid_from);
