-- A caller's verdicts within a range of annotation ids (`verified_by_user` on a page of
-- annotations): one range scan of what the caller verified there, instead of a probe of the
-- primary key for each of a viewport's ~2,000 rows.
CREATE INDEX verifications_by_user ON verifications (user_id, annotation);
