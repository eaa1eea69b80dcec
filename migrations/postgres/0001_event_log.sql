-- The event log: the only table that is not derived. See exact-store's crate docs for the hash.
CREATE TABLE events (
    position    BIGINT  PRIMARY KEY,           -- global, gapless, from 1
    stream      TEXT    NOT NULL,
    version     BIGINT  NOT NULL,              -- per stream, from 1
    event_id    UUID    NOT NULL UNIQUE,       -- UUIDv7; a retried append finds it
    type        TEXT    NOT NULL,
    schema      INTEGER NOT NULL,
    payload     TEXT    NOT NULL,              -- canonical JSON, exactly as hashed
    metadata    TEXT    NOT NULL,              -- canonical JSON, exactly as hashed
    recorded_at BIGINT  NOT NULL,              -- microseconds since 1970, copied from metadata
    prev_hash   BYTEA   NOT NULL,
    hash        BYTEA   NOT NULL,
    UNIQUE (stream, version)
);

CREATE INDEX events_recorded_at ON events (recorded_at);

-- Events are never changed or removed. This trigger stops accidents; the hash chain exposes
-- anyone who drops it.
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();

-- EXACT's integer ids per kind (user, team, image, annotation, ...), advanced in the append
-- transaction that uses them.
CREATE TABLE id_counters (
    kind    TEXT   PRIMARY KEY,
    last_id BIGINT NOT NULL
);
