-- A deleted annotation type stays a row (its annotations name it in the history) but leaves
-- lists, and its name may be used again: uniqueness holds among live types only.
ALTER TABLE annotation_types ADD COLUMN deleted BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE annotation_types DROP CONSTRAINT annotation_types_product_name_key;
CREATE UNIQUE INDEX annotation_types_live_name ON annotation_types (product, name) WHERE NOT deleted;
