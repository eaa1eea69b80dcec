-- What each frame of an image shows (a time point, a stain), as users describe it: a JSON
-- object from frame number to text, written from `ImageDescribed` events.
ALTER TABLE images ADD COLUMN frame_descriptions TEXT NOT NULL DEFAULT '{}';
