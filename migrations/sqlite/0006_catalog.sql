-- Read models of the catalog projection (exact-projections): who and what exists, as EXACT's
-- tables, derived from the log. Times are microseconds since 1970. Unique indexes repeat the
-- domain's rules as a backstop against two racing commands; the domain checks them first.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    is_superuser  INTEGER NOT NULL,
    is_staff      INTEGER NOT NULL,
    is_active     INTEGER NOT NULL,
    date_joined   INTEGER NOT NULL,
    version       INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE teams (
    id        INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL,
    website   TEXT    NOT NULL,
    creator   INTEGER NOT NULL,
    dissolved INTEGER NOT NULL,
    time      INTEGER NOT NULL,
    version   INTEGER NOT NULL
);
CREATE UNIQUE INDEX teams_name ON teams (name) WHERE dissolved = 0;

CREATE TABLE team_memberships (
    team     INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    is_admin INTEGER NOT NULL,
    PRIMARY KEY (team, user_id)
);
CREATE INDEX team_memberships_by_user ON team_memberships (user_id);

CREATE TABLE products (
    id          INTEGER PRIMARY KEY,
    team        INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    creator     INTEGER NOT NULL,
    time        INTEGER NOT NULL,
    version     INTEGER NOT NULL,
    UNIQUE (team, name)
);

CREATE TABLE product_image_sets (
    product   INTEGER NOT NULL,
    image_set INTEGER NOT NULL,
    PRIMARY KEY (product, image_set)
);
CREATE INDEX product_image_sets_by_set ON product_image_sets (image_set);

CREATE TABLE annotation_types (
    id               INTEGER PRIMARY KEY,
    product          INTEGER NOT NULL,
    name             TEXT    NOT NULL,
    vector_type      INTEGER NOT NULL,
    node_count       INTEGER NOT NULL,
    color_code       TEXT    NOT NULL,
    default_width    INTEGER NOT NULL,
    default_height   INTEGER NOT NULL,
    sort_order       INTEGER NOT NULL,
    closed           INTEGER NOT NULL,
    area_hit_test    INTEGER NOT NULL,
    enable_concealed INTEGER NOT NULL,
    enable_blurred   INTEGER NOT NULL,
    active           INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    UNIQUE (product, name)
);

CREATE TABLE image_sets (
    id                   INTEGER PRIMARY KEY,
    team                 INTEGER,           -- NULL once set free
    creator              INTEGER NOT NULL,
    name                 TEXT    NOT NULL,
    location             TEXT    NOT NULL,
    description          TEXT    NOT NULL,
    public               INTEGER NOT NULL,
    public_collaboration INTEGER NOT NULL,
    image_lock           INTEGER NOT NULL,
    priority             INTEGER NOT NULL,
    collaboration_type   INTEGER NOT NULL,
    main_annotation_type INTEGER,
    deleted              INTEGER NOT NULL,
    time                 INTEGER NOT NULL,
    version              INTEGER NOT NULL
);
CREATE UNIQUE INDEX image_sets_name ON image_sets (team, name) WHERE deleted = 0;

CREATE TABLE set_tags (
    image_set INTEGER NOT NULL,
    name      TEXT    NOT NULL,
    PRIMARY KEY (image_set, name)
);

CREATE TABLE images (
    id              INTEGER PRIMARY KEY,
    image_set       INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    filename        TEXT    NOT NULL,
    checksum        TEXT    NOT NULL,
    width           INTEGER NOT NULL,
    height          INTEGER NOT NULL,
    mpp             REAL,
    objective_power REAL,
    depth           INTEGER NOT NULL,
    frames          INTEGER NOT NULL,
    channels        INTEGER NOT NULL,
    image_type      INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    time            INTEGER NOT NULL,
    version         INTEGER NOT NULL
);
CREATE INDEX images_by_set ON images (image_set);
CREATE UNIQUE INDEX images_name ON images (image_set, name) WHERE deleted = 0;

CREATE TABLE export_formats (
    id                  INTEGER PRIMARY KEY,
    team                INTEGER NOT NULL,
    creator             INTEGER NOT NULL,
    name                TEXT    NOT NULL,
    public              INTEGER NOT NULL,
    base_format         TEXT    NOT NULL,
    image_format        TEXT    NOT NULL,
    annotation_format   TEXT    NOT NULL,
    vector_format       TEXT    NOT NULL,
    not_in_image_format TEXT    NOT NULL,
    name_format         TEXT    NOT NULL,
    min_verifications   INTEGER NOT NULL,
    image_aggregation   INTEGER NOT NULL,
    include_blurred     INTEGER NOT NULL,
    include_concealed   INTEGER NOT NULL,
    deleted             INTEGER NOT NULL,
    last_change_time    INTEGER NOT NULL,
    version             INTEGER NOT NULL
);
CREATE UNIQUE INDEX export_formats_name ON export_formats (name) WHERE deleted = 0;

CREATE TABLE export_format_types (
    export_format   INTEGER NOT NULL,
    annotation_type INTEGER NOT NULL,
    PRIMARY KEY (export_format, annotation_type)
);

CREATE TABLE dataset_versions (
    id       INTEGER PRIMARY KEY,
    name     TEXT    NOT NULL UNIQUE,
    position INTEGER NOT NULL,
    creator  INTEGER NOT NULL,
    time     INTEGER NOT NULL
);

CREATE TABLE dataset_version_sets (
    dataset_version INTEGER NOT NULL,
    image_set       INTEGER NOT NULL,
    PRIMARY KEY (dataset_version, image_set)
);

-- EXACT's LogImageAction: action 1 opened, 2 closed; one row per event.
CREATE TABLE image_access_log (
    position INTEGER PRIMARY KEY,
    image    INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    action   INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    ip       TEXT
);
CREATE INDEX image_access_log_by_image ON image_access_log (image, time);

-- Kept by the annotations projection: live annotations per image and type by verdict.
CREATE TABLE annotation_statistics (
    image           INTEGER NOT NULL,
    annotation_type INTEGER NOT NULL,
    total           INTEGER NOT NULL,
    accepted        INTEGER NOT NULL,
    rejected        INTEGER NOT NULL,
    unverified      INTEGER NOT NULL,
    PRIMARY KEY (image, annotation_type)
);
