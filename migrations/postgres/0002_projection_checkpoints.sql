-- The last log position each read model has applied.
CREATE TABLE projection_checkpoints (
    name     TEXT   PRIMARY KEY,
    position BIGINT NOT NULL
);
