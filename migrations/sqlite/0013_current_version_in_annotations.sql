-- The current version of an annotation is its row in `annotations`; `annotation_history` keeps
-- the versions that were replaced, each valid from `valid_from` until `valid_to`. A creation
-- then writes one row instead of two (the history row doubled what a creation and a rebuild
-- wrote); a change copies the row it replaces into the history. For that the current row
-- keeps what the history row kept besides: the event that made it and its reason (its
-- actor, time and position were already `last_editor`, `last_edit_time` and `position`).
ALTER TABLE annotations ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
ALTER TABLE annotations ADD COLUMN reason TEXT;

-- Every version of every annotation, one row each, for reading by hand (an audit, a report).
-- The projection's own queries read the two tables separately, each through its indexes.
CREATE VIEW annotation_versions AS
SELECT id, version, valid_from, valid_to, event_type, actor, recorded_at, reason, image, annotation_type,
    vector, description, meta_data, concealed, blurred, deleted, min_x, min_y, max_x, max_y
FROM annotation_history
UNION ALL
SELECT id, version, position, CAST(NULL AS BIGINT), event_type, last_editor, last_edit_time, reason, image, annotation_type,
    vector, description, meta_data, concealed, blurred, deleted, min_x, min_y, max_x, max_y
FROM annotations;

-- The history's rows of current versions are to go, and the new columns need the log's
-- values: the read model is emptied and its checkpoint dropped, so that the store rebuilds it
-- from the log when it opens.
DELETE FROM annotations;
DELETE FROM verifications;
DELETE FROM annotation_history;
DELETE FROM annotation_density;
DELETE FROM annotation_statistics;
DELETE FROM projection_checkpoints WHERE name = 'annotations';
