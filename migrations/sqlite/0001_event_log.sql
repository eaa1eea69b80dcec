-- The event log: the only table that is not derived. See exact-store's crate docs for the hash.
CREATE TABLE events (
    position    INTEGER PRIMARY KEY,           -- global, gapless, from 1
    stream      TEXT    NOT NULL,
    version     INTEGER NOT NULL,              -- per stream, from 1
    event_id    BLOB    NOT NULL UNIQUE,       -- UUIDv7, 16 bytes; a retried append finds it
    type        TEXT    NOT NULL,
    schema      INTEGER NOT NULL,
    payload     TEXT    NOT NULL,              -- canonical JSON, exactly as hashed
    metadata    TEXT    NOT NULL,              -- canonical JSON, exactly as hashed
    recorded_at INTEGER NOT NULL,              -- microseconds since 1970, copied from metadata
    prev_hash   BLOB    NOT NULL,
    hash        BLOB    NOT NULL,
    UNIQUE (stream, version)
);

CREATE INDEX events_recorded_at ON events (recorded_at);

-- Events are never changed or removed. These triggers stop accidents; the hash chain exposes
-- anyone who drops them.
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'events are append-only');
END;

-- EXACT's integer ids per kind (user, team, image, annotation, ...), advanced in the append
-- transaction that uses them.
CREATE TABLE id_counters (
    kind    TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) WITHOUT ROWID;
