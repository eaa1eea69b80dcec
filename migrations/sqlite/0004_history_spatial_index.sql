-- "As of" viewport queries: an R*Tree over each history row's box, the positions it was valid
-- between, and its image. The R*Tree needs an integer key that VACUUM keeps, so the history
-- table is rebuilt with one (`entry`).

CREATE TABLE annotation_history_new (
    entry           INTEGER PRIMARY KEY,
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
    UNIQUE (id, version)
);
INSERT INTO annotation_history_new (id, version, valid_from, valid_to, event_type, actor, recorded_at, reason,
    image, annotation_type, vector, description, meta_data, concealed, blurred, deleted, min_x, min_y, max_x, max_y)
SELECT id, version, valid_from, valid_to, event_type, actor, recorded_at, reason, image, annotation_type, vector,
    description, meta_data, concealed, blurred, deleted, min_x, min_y, max_x, max_y
FROM annotation_history ORDER BY valid_from, id;
DROP TABLE annotation_history;
ALTER TABLE annotation_history_new RENAME TO annotation_history;
CREATE INDEX annotation_history_as_of ON annotation_history (image, valid_from);

-- A version still current is valid "until forever": 9e18, past any position. The R*Tree keeps
-- 32-bit floats rounded outwards, so it only ever finds too much; queries check the row exactly.
CREATE VIRTUAL TABLE annotation_history_rtree USING rtree (
    entry, min_x, max_x, min_y, max_y, valid_from, valid_to, min_image, max_image
);
INSERT INTO annotation_history_rtree
SELECT entry, min_x, max_x, min_y, max_y, valid_from, COALESCE(valid_to, 9e18), image, image
FROM annotation_history WHERE min_x IS NOT NULL;

CREATE TRIGGER annotation_history_rtree_insert AFTER INSERT ON annotation_history WHEN new.min_x IS NOT NULL
BEGIN
    INSERT INTO annotation_history_rtree VALUES (new.entry, new.min_x, new.max_x, new.min_y, new.max_y,
        new.valid_from, COALESCE(new.valid_to, 9e18), new.image, new.image);
END;
CREATE TRIGGER annotation_history_rtree_close AFTER UPDATE OF valid_to ON annotation_history WHEN new.min_x IS NOT NULL
BEGIN
    UPDATE annotation_history_rtree SET valid_to = COALESCE(new.valid_to, 9e18) WHERE entry = new.entry;
END;
CREATE TRIGGER annotation_history_rtree_delete AFTER DELETE ON annotation_history
BEGIN
    DELETE FROM annotation_history_rtree WHERE entry = old.entry;
END;
