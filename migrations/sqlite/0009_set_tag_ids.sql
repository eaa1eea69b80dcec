-- EXACT's set tags are rows with ids; here a tag is a name on image sets. The catalog
-- projection numbers each name the first time the log gives it to a set, so a rebuild gives
-- every name the same id again.
CREATE TABLE set_tag_ids (
    name TEXT    PRIMARY KEY,
    id   INTEGER NOT NULL UNIQUE
);
-- Numbered in log order, which only a replay gives: the catalog read model is emptied here
-- and its checkpoint dropped, so that the store rebuilds it from the log when it opens.
DELETE FROM users;
DELETE FROM access_tokens;
DELETE FROM teams;
DELETE FROM team_memberships;
DELETE FROM products;
DELETE FROM product_image_sets;
DELETE FROM annotation_types;
DELETE FROM image_sets;
DELETE FROM set_tags;
DELETE FROM images;
DELETE FROM export_formats;
DELETE FROM export_format_types;
DELETE FROM dataset_versions;
DELETE FROM dataset_version_sets;
DELETE FROM image_access_log;
DELETE FROM projection_checkpoints WHERE name = 'catalog';
