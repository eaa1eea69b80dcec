-- "As of" viewport queries: one GiST index over each history row's box and the range of
-- positions it was valid in (open-ended while it is current).
ALTER TABLE annotation_history
    ADD COLUMN bbox box GENERATED ALWAYS AS (box(point(min_x, min_y), point(max_x, max_y))) STORED,
    ADD COLUMN validity int8range GENERATED ALWAYS AS (int8range(valid_from, valid_to)) STORED;
CREATE INDEX annotation_history_spatial ON annotation_history USING gist (bbox, validity);
