-- The audit timeline of an image reads its annotations' current versions newest first: with
-- this index a page of 100 is a range scan of 100 entries, not a sort of every annotation on
-- the image (the history half has `annotation_history_as_of (image, valid_from)` already).
CREATE INDEX annotations_by_image_position ON annotations (image, position);
