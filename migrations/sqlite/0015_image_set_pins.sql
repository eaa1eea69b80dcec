-- Sets each user pinned to the top of their home page (catalog projection; EXACT's
-- `ImageSet.pinned_by`). The events live in the user's stream.
CREATE TABLE image_set_pins (
    user_id   BIGINT NOT NULL,
    image_set BIGINT NOT NULL,
    pinned    BIGINT NOT NULL,   -- when, in microseconds since the epoch
    PRIMARY KEY (user_id, image_set)
);
