-- Personal access tokens (catalog projection): only each token's SHA-256 is kept.
CREATE TABLE access_tokens (
    token      TEXT    PRIMARY KEY,   -- the token's UUID, its public id
    user_id    INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    token_hash TEXT    NOT NULL UNIQUE,
    created    INTEGER NOT NULL,
    revoked    INTEGER                -- when it was revoked; NULL while it is valid
);
CREATE INDEX access_tokens_by_user ON access_tokens (user_id);
