-- EXACT's screening mode (catalog projection): one user's walk over a grid of tiles of one
-- image, one per user and image.
CREATE TABLE screening_modes (
    id              INTEGER PRIMARY KEY,
    image           INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    screening_tiles TEXT,
    x_steps         INTEGER NOT NULL,
    y_steps         INTEGER NOT NULL,
    x_resolution    INTEGER NOT NULL,
    y_resolution    INTEGER NOT NULL,
    current_index   INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    UNIQUE (image, user_id)
);
