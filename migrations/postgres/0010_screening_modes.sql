-- EXACT's screening mode (catalog projection): one user's walk over a grid of tiles of one
-- image, one per user and image.
CREATE TABLE screening_modes (
    id              BIGINT PRIMARY KEY,
    image           BIGINT NOT NULL,
    user_id         BIGINT NOT NULL,
    screening_tiles TEXT,
    x_steps         BIGINT NOT NULL,
    y_steps         BIGINT NOT NULL,
    x_resolution    BIGINT NOT NULL,
    y_resolution    BIGINT NOT NULL,
    current_index   BIGINT NOT NULL,
    version         BIGINT NOT NULL,
    UNIQUE (image, user_id)
);
