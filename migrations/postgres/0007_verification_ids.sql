-- A verdict's id in EXACT's REST API is the log position of the event that gave it: unique,
-- stable, and it changes when the user changes their verdict (EXACT updated the row instead).
-- Rows written before this column existed get their position on the next `exact replay rebuild`.
ALTER TABLE verifications ADD COLUMN position BIGINT NOT NULL DEFAULT 0;
CREATE INDEX verifications_by_position ON verifications (position);
