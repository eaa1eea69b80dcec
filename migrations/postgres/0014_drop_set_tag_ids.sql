-- A set tag's id is now a digest of its name (api/src/rest/set_tags.rs): numbers given in
-- order of first use told one team when another had used a name first. The table that kept
-- those numbers goes.
DROP TABLE set_tag_ids;
