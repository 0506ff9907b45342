-- Riff catalog schema, version 13 (SQLite): nothing to do. PostgreSQL's
-- 0013 makes autovacuum visit playlist_items sooner, so the walk to an
-- insert position reads the index only (visibility map). SQLite has no
-- visibility map and no autovacuum thresholds: its index walk never
-- visits the table, and deleted rows' space is reused in place.
SELECT 1;
