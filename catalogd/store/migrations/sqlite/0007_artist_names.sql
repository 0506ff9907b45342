-- Artist names are unique by store.NameKey (NFKC, case folded,
-- default-ignorable code points removed). The key is computed in Go: rows
-- made before this migration have none until the store fills
-- it in (Open does, in the migration's transaction; the oldest artist keeps
-- a contested name).
ALTER TABLE artists ADD COLUMN name_unique TEXT;
CREATE UNIQUE INDEX artists_name_unique ON artists(name_unique);
CREATE INDEX artists_name_unique_missing ON artists(id) WHERE name_unique IS NULL;
