-- Read models of the catalog projection (exact-projections): who and what exists, as EXACT's
-- tables, derived from the log. Times are microseconds since 1970. Unique indexes repeat the
-- domain's rules as a backstop against two racing commands; the domain checks them first.

CREATE TABLE users (
    id            BIGINT PRIMARY KEY,
    username      TEXT    NOT NULL,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    is_superuser  BOOLEAN NOT NULL,
    is_staff      BOOLEAN NOT NULL,
    is_active     BOOLEAN NOT NULL,
    date_joined   BIGINT NOT NULL,
    version       BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));

CREATE TABLE teams (
    id        BIGINT PRIMARY KEY,
    name      TEXT    NOT NULL,
    website   TEXT    NOT NULL,
    creator   BIGINT NOT NULL,
    dissolved BOOLEAN NOT NULL,
    time      BIGINT NOT NULL,
    version   BIGINT NOT NULL
);
CREATE UNIQUE INDEX teams_name ON teams (name) WHERE NOT dissolved;

CREATE TABLE team_memberships (
    team     BIGINT NOT NULL,
    user_id  BIGINT NOT NULL,
    is_admin BOOLEAN NOT NULL,
    PRIMARY KEY (team, user_id)
);
CREATE INDEX team_memberships_by_user ON team_memberships (user_id);

CREATE TABLE products (
    id          BIGINT PRIMARY KEY,
    team        BIGINT NOT NULL,
    name        TEXT    NOT NULL,
    description TEXT    NOT NULL,
    creator     BIGINT NOT NULL,
    time        BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    UNIQUE (team, name)
);

CREATE TABLE product_image_sets (
    product   BIGINT NOT NULL,
    image_set BIGINT NOT NULL,
    PRIMARY KEY (product, image_set)
);
CREATE INDEX product_image_sets_by_set ON product_image_sets (image_set);

CREATE TABLE annotation_types (
    id               BIGINT PRIMARY KEY,
    product          BIGINT NOT NULL,
    name             TEXT    NOT NULL,
    vector_type      BIGINT NOT NULL,
    node_count       BIGINT NOT NULL,
    color_code       TEXT    NOT NULL,
    default_width    BIGINT NOT NULL,
    default_height   BIGINT NOT NULL,
    sort_order       BIGINT NOT NULL,
    closed           BOOLEAN NOT NULL,
    area_hit_test    BOOLEAN NOT NULL,
    enable_concealed BOOLEAN NOT NULL,
    enable_blurred   BOOLEAN NOT NULL,
    active           BOOLEAN NOT NULL,
    version          BIGINT NOT NULL,
    UNIQUE (product, name)
);

CREATE TABLE image_sets (
    id                   BIGINT PRIMARY KEY,
    team                 BIGINT,           -- NULL once set free
    creator              BIGINT NOT NULL,
    name                 TEXT    NOT NULL,
    location             TEXT    NOT NULL,
    description          TEXT    NOT NULL,
    public               BOOLEAN NOT NULL,
    public_collaboration BOOLEAN NOT NULL,
    image_lock           BOOLEAN NOT NULL,
    priority             BIGINT NOT NULL,
    collaboration_type   BIGINT NOT NULL,
    main_annotation_type BIGINT,
    deleted              BOOLEAN NOT NULL,
    time                 BIGINT NOT NULL,
    version              BIGINT NOT NULL
);
CREATE UNIQUE INDEX image_sets_name ON image_sets (team, name) WHERE NOT deleted;

CREATE TABLE set_tags (
    image_set BIGINT NOT NULL,
    name      TEXT    NOT NULL,
    PRIMARY KEY (image_set, name)
);

CREATE TABLE images (
    id              BIGINT PRIMARY KEY,
    image_set       BIGINT NOT NULL,
    name            TEXT    NOT NULL,
    filename        TEXT    NOT NULL,
    checksum        TEXT    NOT NULL,
    width           BIGINT NOT NULL,
    height          BIGINT NOT NULL,
    mpp             DOUBLE PRECISION,
    objective_power DOUBLE PRECISION,
    depth           BIGINT NOT NULL,
    frames          BIGINT NOT NULL,
    channels        BIGINT NOT NULL,
    image_type      BIGINT NOT NULL,
    deleted         BOOLEAN NOT NULL,
    time            BIGINT NOT NULL,
    version         BIGINT NOT NULL
);
CREATE INDEX images_by_set ON images (image_set);
CREATE UNIQUE INDEX images_name ON images (image_set, name) WHERE NOT deleted;

CREATE TABLE export_formats (
    id                  BIGINT PRIMARY KEY,
    team                BIGINT NOT NULL,
    creator             BIGINT NOT NULL,
    name                TEXT    NOT NULL,
    public              BOOLEAN NOT NULL,
    base_format         TEXT    NOT NULL,
    image_format        TEXT    NOT NULL,
    annotation_format   TEXT    NOT NULL,
    vector_format       TEXT    NOT NULL,
    not_in_image_format TEXT    NOT NULL,
    name_format         TEXT    NOT NULL,
    min_verifications   BIGINT NOT NULL,
    image_aggregation   BOOLEAN NOT NULL,
    include_blurred     BOOLEAN NOT NULL,
    include_concealed   BOOLEAN NOT NULL,
    deleted             BOOLEAN NOT NULL,
    last_change_time    BIGINT NOT NULL,
    version             BIGINT NOT NULL
);
CREATE UNIQUE INDEX export_formats_name ON export_formats (name) WHERE NOT deleted;

CREATE TABLE export_format_types (
    export_format   BIGINT NOT NULL,
    annotation_type BIGINT NOT NULL,
    PRIMARY KEY (export_format, annotation_type)
);

CREATE TABLE dataset_versions (
    id       BIGINT PRIMARY KEY,
    name     TEXT    NOT NULL UNIQUE,
    position BIGINT NOT NULL,
    creator  BIGINT NOT NULL,
    time     BIGINT NOT NULL
);

CREATE TABLE dataset_version_sets (
    dataset_version BIGINT NOT NULL,
    image_set       BIGINT NOT NULL,
    PRIMARY KEY (dataset_version, image_set)
);

-- EXACT's LogImageAction: action 1 opened, 2 closed; one row per event.
CREATE TABLE image_access_log (
    position BIGINT PRIMARY KEY,
    image    BIGINT NOT NULL,
    user_id  BIGINT NOT NULL,
    action   BIGINT NOT NULL,
    time     BIGINT NOT NULL,
    ip       TEXT
);
CREATE INDEX image_access_log_by_image ON image_access_log (image, time);

-- Kept by the annotations projection: live annotations per image and type by verdict.
CREATE TABLE annotation_statistics (
    image           BIGINT NOT NULL,
    annotation_type BIGINT NOT NULL,
    total           BIGINT NOT NULL,
    accepted        BIGINT NOT NULL,
    rejected        BIGINT NOT NULL,
    unverified      BIGINT NOT NULL,
    PRIMARY KEY (image, annotation_type)
);
