-- The store's default export format (`format=exact`, made on first start) belongs to no team.
ALTER TABLE export_formats ALTER COLUMN team DROP NOT NULL;
