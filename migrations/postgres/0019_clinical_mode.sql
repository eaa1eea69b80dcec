-- Clinical mode (issue 19): a set setting, and verdicts given as electronic signatures.
-- A signature names the signer as shown, its meaning (reviewed, approved, rejected) and the
-- annotation version it was given on; `unsigned_at` is the log position of the first change
-- of the annotation after that version (the signature does not apply to what came after).
ALTER TABLE image_sets ADD COLUMN clinical BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE verifications ADD COLUMN signer TEXT;
ALTER TABLE verifications ADD COLUMN meaning TEXT;
ALTER TABLE verifications ADD COLUMN signed_version BIGINT;
ALTER TABLE verifications ADD COLUMN unsigned_at BIGINT;
