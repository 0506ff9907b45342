-- Album covers (issue 19): cover_hash names the album's uploaded or
-- embedded cover, whose images are blob objects
-- artists/{artist}/albums/{album}/covers/{cover_hash}/{size}.jpg
-- (package blobkey); '' when the album has none (cover_url, a link given
-- by the artist, is then what the API shows).
ALTER TABLE albums ADD COLUMN cover_hash TEXT NOT NULL DEFAULT '';
