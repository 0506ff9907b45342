-- Riff catalog schema, version 13 (PostgreSQL): playlist_items is vacuumed
-- soon after a playlist grows, not after a fifth of the whole table
-- (issue 15, item 6; docs/performance.md, "PostgreSQL at 1,000,000 songs").
--
-- An insert at a position walks the (playlist_id, pos, id) index to it:
-- 5,000 entries in the middle of a 10,000-item playlist. The walk is an
-- index-only scan, but only over heap pages the visibility map marks
-- all-visible; a freshly filled playlist has none, so each of the 5,000
-- entries is checked in the heap (measured: 5,002 heap fetches and
-- 1.3–4.4 ms for the walk; after VACUUM 48 and 0.5–0.65 ms). Autovacuum's
-- insert trigger is 1,000 rows + 20 % of the table: at 100M items, 20M
-- inserts. At 1 % (and 2 % of dead rows for the deletes of edits) a large
-- table is visited about twenty times as often; each visit skips the
-- all-visible pages, so it costs the pages that changed.
ALTER TABLE playlist_items SET (
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_vacuum_scale_factor = 0.02
);
