-- A user's audit timeline reads the versions they made, newest first, a page at a time: with
-- these a page is a range scan of its rows, not a scan of every version (0.5-1.7 s a page at a
-- million annotations without them).
CREATE INDEX annotations_by_editor ON annotations (last_editor, position);
CREATE INDEX annotation_history_by_actor ON annotation_history (actor, valid_from);
