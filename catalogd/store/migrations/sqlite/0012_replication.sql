-- Replication between regions (SQLite). Publishing a song version writes a
-- 'copy' row here in the same transaction; collecting one (GC, after a
-- replacement or a takedown) writes a 'delete' row. The dispatcher
-- (package catalogd/replicate) applies the rows in id order to every
-- region other than the home region, records per region the highest id
-- applied (its cursor), and records which regions hold which version
-- (version_regions), so playback URLs name only regions that have it.

CREATE TABLE replication_outbox (
    -- AUTOINCREMENT: ids are never reused, so a cursor never skips a row.
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    op         TEXT    NOT NULL CHECK (op IN ('copy', 'delete')),
    song_id    INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    prefix     TEXT    NOT NULL,   -- the version folder, "artists/{a}/albums/{b}/songs/{s}/v{N}/"
    created_at INTEGER NOT NULL
);

-- One row per region: the highest outbox id applied there. It only grows.
CREATE TABLE replication_cursors (
    region     TEXT    PRIMARY KEY,
    acked_id   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Which regions (other than the home region, which has every published
-- version) hold a song version, whole and verified.
CREATE TABLE version_regions (
    song_id       INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    region        TEXT    NOT NULL,
    replicated_at INTEGER NOT NULL,
    PRIMARY KEY (song_id, version, region)
);
