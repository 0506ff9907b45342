-- Purge outbox (SQLite). A change that makes cached objects wrong (publish
-- of a new version, takedown, replace) writes one row per blob-key prefix
-- here in the same transaction; the dispatcher (package catalogd/purge)
-- sends every row to every configured edge in id order and records, per
-- edge, the highest id the edge acknowledged. Rows every configured edge
-- has acknowledged are deleted after a retention window.

CREATE TABLE purge_outbox (
    -- AUTOINCREMENT: ids are never reused, even after the newest rows are
    -- deleted, so "every row after an edge's cursor" never skips a row.
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    prefix     TEXT    NOT NULL,   -- canonical: "artists/", "artists/{a}/", ".../albums/{b}/" or ".../songs/{s}/"
    created_at INTEGER NOT NULL
);

-- One row per edge (its admin base URL): the highest outbox id it
-- acknowledged. It only ever grows.
CREATE TABLE purge_cursors (
    edge       TEXT    PRIMARY KEY,
    acked_id   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
