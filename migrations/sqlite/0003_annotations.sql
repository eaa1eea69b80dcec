-- Read models of the annotations projection (exact-projections). Derived from the log: a
-- rebuild drops their rows and replays every event.

CREATE TABLE annotations (
    id                INTEGER PRIMARY KEY,
    image             INTEGER NOT NULL,
    annotation_type   INTEGER NOT NULL,
    vector            TEXT,                 -- EXACT's JSON vector; NULL: not in image / global
    description       TEXT    NOT NULL,
    meta_data         TEXT,                 -- JSON
    concealed         INTEGER NOT NULL,
    blurred           INTEGER NOT NULL,
    deleted           INTEGER NOT NULL,
    unique_identifier TEXT    NOT NULL UNIQUE,
    user_id           INTEGER NOT NULL,     -- creator
    last_editor       INTEGER,
    time              INTEGER NOT NULL,     -- microseconds since 1970
    last_edit_time    INTEGER NOT NULL,
    min_x REAL, min_y REAL, max_x REAL, max_y REAL,
    frame             INTEGER,
    version           INTEGER NOT NULL,     -- the stream's version: the ETag
    position          INTEGER NOT NULL      -- the log position of the last change
);
CREATE INDEX annotations_by_image ON annotations (image, annotation_type);

-- Viewport queries: a 3-D R*Tree over x, y and the image id, kept by triggers.
CREATE VIRTUAL TABLE annotations_rtree USING rtree (id, min_x, max_x, min_y, max_y, min_image, max_image);

CREATE TRIGGER annotations_rtree_insert AFTER INSERT ON annotations WHEN new.min_x IS NOT NULL
BEGIN
    INSERT INTO annotations_rtree VALUES (new.id, new.min_x, new.max_x, new.min_y, new.max_y, new.image, new.image);
END;
CREATE TRIGGER annotations_rtree_update AFTER UPDATE ON annotations
BEGIN
    DELETE FROM annotations_rtree WHERE id = old.id;
    INSERT INTO annotations_rtree
        SELECT new.id, new.min_x, new.max_x, new.min_y, new.max_y, new.image, new.image WHERE new.min_x IS NOT NULL;
END;
CREATE TRIGGER annotations_rtree_delete AFTER DELETE ON annotations
BEGIN
    DELETE FROM annotations_rtree WHERE id = old.id;
END;

CREATE TABLE verifications (
    annotation INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    verified   INTEGER NOT NULL,
    time       INTEGER NOT NULL,
    PRIMARY KEY (annotation, user_id)
);

-- Every version of every annotation: valid from the position that made it until the position
-- that replaced it (NULL: still current). Answers "as of position P" without replaying.
CREATE TABLE annotation_history (
    id              INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    valid_from      INTEGER NOT NULL,
    valid_to        INTEGER,
    event_type      TEXT    NOT NULL,
    actor           INTEGER,
    recorded_at     INTEGER NOT NULL,
    reason          TEXT,
    image           INTEGER NOT NULL,
    annotation_type INTEGER NOT NULL,
    vector          TEXT,
    description     TEXT    NOT NULL,
    meta_data       TEXT,
    concealed       INTEGER NOT NULL,
    blurred         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    min_x REAL, min_y REAL, max_x REAL, max_y REAL,
    PRIMARY KEY (id, version)
);
CREATE INDEX annotation_history_as_of ON annotation_history (image, valid_from);
