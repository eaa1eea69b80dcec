-- Every insert into the log tells the listeners of every process (LISTEN exact_events) the last
-- position it wrote, delivered at commit. Sent by the server as a statement of its own, it was
-- one more round trip of the writer that every append waits for.
CREATE FUNCTION exact_announce_events() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    last_position BIGINT;
BEGIN
    SELECT max(position) INTO last_position FROM inserted;
    IF last_position IS NOT NULL THEN
        PERFORM pg_notify('exact_events', last_position::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_announce AFTER INSERT ON events REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION exact_announce_events();
