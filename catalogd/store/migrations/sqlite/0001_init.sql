-- Riff catalog schema, version 1 (SQLite).
--
-- Conventions: ids are INTEGER PRIMARY KEY (rowid aliases); times are unix
-- milliseconds (INTEGER) so both databases compare and index them the same
-- way; *_key columns hold folded text for exact matching and search_*
-- columns hold the folded words the full-text indexes see (see store.Fold).
-- rank_key orders search results and lists by popularity: the popularity
-- bucket (4 per doubling) in the high bits, the id in the low 40, so a
-- descending scan yields the most popular first, newest first within a
-- bucket. The PostgreSQL schema mirrors this file table for table.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL,
    email_key     TEXT    NOT NULL UNIQUE,          -- lower-cased email: case-insensitive uniqueness and lookup
    password_hash TEXT    NOT NULL,                 -- argon2id PHC string
    display_name  TEXT    NOT NULL,
    avatar_url    TEXT    NOT NULL DEFAULT '',
    country       TEXT    NOT NULL DEFAULT '',      -- ISO 3166-1 alpha-2 or ''
    tier          TEXT    NOT NULL DEFAULT 'free'     CHECK (tier IN ('free', 'premium')),
    role          TEXT    NOT NULL DEFAULT 'listener' CHECK (role IN ('listener', 'artist', 'admin')),
    preferences   TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(preferences)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A login session: one chain of refresh tokens. Revoking the family ends
-- the session on every device that holds a token of it.
CREATE TABLE refresh_families (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER,                          -- NULL while the session lives
    revoke_reason TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX refresh_families_user ON refresh_families(user_id);

CREATE TABLE refresh_tokens (
    id          INTEGER PRIMARY KEY,
    family_id   INTEGER NOT NULL REFERENCES refresh_families(id) ON DELETE CASCADE,
    token_hash  BLOB    NOT NULL UNIQUE,            -- SHA-256 of the opaque token; the token itself is never stored
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,                            -- set when rotated (or superseded within the grace window)
    replaced_by INTEGER                             -- the token issued in exchange for this one
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_expires ON refresh_tokens(expires_at);

CREATE TABLE artists (
    id            INTEGER PRIMARY KEY,
    owner_user_id INTEGER NOT NULL REFERENCES users(id),
    name          TEXT    NOT NULL,
    bio           TEXT    NOT NULL DEFAULT '',
    image_url     TEXT    NOT NULL DEFAULT '',
    popularity    INTEGER NOT NULL DEFAULT 0,
    name_key      TEXT    NOT NULL,
    search_text   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    rank_key      INTEGER GENERATED ALWAYS AS ((CAST(log2(popularity + 1) * 4 AS INTEGER) << 40) | id) STORED
);
CREATE INDEX artists_owner ON artists(owner_user_id);
CREATE INDEX artists_name_key ON artists(name_key, rank_key);

CREATE TABLE albums (
    id           INTEGER PRIMARY KEY,
    artist_id    INTEGER NOT NULL REFERENCES artists(id),
    title        TEXT    NOT NULL,
    type         TEXT    NOT NULL CHECK (type IN ('album', 'single', 'ep')),
    release_date TEXT    NOT NULL DEFAULT '',       -- YYYY-MM-DD or ''
    cover_url    TEXT    NOT NULL DEFAULT '',
    popularity   INTEGER NOT NULL DEFAULT 0,
    name_key     TEXT    NOT NULL,
    search_text  TEXT    NOT NULL,                  -- title words
    search_extra TEXT    NOT NULL,                  -- artist name words
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    rank_key     INTEGER GENERATED ALWAYS AS ((CAST(log2(popularity + 1) * 4 AS INTEGER) << 40) | id) STORED
);
CREATE INDEX albums_artist ON albums(artist_id, release_date);
CREATE INDEX albums_name_key ON albums(name_key, rank_key);

CREATE TABLE songs (
    id                INTEGER PRIMARY KEY,
    album_id          INTEGER NOT NULL REFERENCES albums(id),
    primary_artist_id INTEGER NOT NULL REFERENCES artists(id),
    title             TEXT    NOT NULL,
    track_number      INTEGER NOT NULL DEFAULT 1,
    duration_ms       INTEGER NOT NULL DEFAULT 0,
    genre             TEXT    NOT NULL DEFAULT '',
    explicit          INTEGER NOT NULL DEFAULT 0 CHECK (explicit IN (0, 1)),
    status            TEXT    NOT NULL DEFAULT 'processing'
                      CHECK (status IN ('processing', 'ready', 'failed', 'taken_down')),
    current_version   INTEGER NOT NULL DEFAULT 0,   -- v{N} folder playback opens; 0 = none published yet
    popularity        INTEGER NOT NULL DEFAULT 0,
    trend_log         REAL    NOT NULL DEFAULT -1e9, -- log2 of time-decayed plays (see song_plays_hourly)
    name_key          TEXT    NOT NULL,
    search_text       TEXT    NOT NULL,             -- title words
    search_extra      TEXT    NOT NULL,             -- credited artist names and album title words
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    rank_key          INTEGER GENERATED ALWAYS AS ((CAST(log2(popularity + 1) * 4 AS INTEGER) << 40) | id) STORED
);
CREATE INDEX songs_album ON songs(album_id, track_number);
CREATE INDEX songs_primary_artist_ready ON songs(primary_artist_id, rank_key) WHERE status = 'ready';
CREATE INDEX songs_name_key_ready ON songs(name_key, rank_key) WHERE status = 'ready';
CREATE INDEX songs_trending ON songs(trend_log) WHERE status = 'ready';
CREATE INDEX songs_genre_trending ON songs(genre, trend_log) WHERE status = 'ready';

-- Ordered artist credits of a song. position 0 is the primary artist.
CREATE TABLE song_artists (
    song_id   INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    artist_id INTEGER NOT NULL REFERENCES artists(id),
    role      TEXT    NOT NULL CHECK (role IN ('primary', 'featured', 'producer', 'composer', 'remixer')),
    position  INTEGER NOT NULL,
    PRIMARY KEY (song_id, position),
    UNIQUE (song_id, artist_id, role)
);
CREATE INDEX song_artists_artist ON song_artists(artist_id, song_id);

-- Packaged media of each published version of a song.
CREATE TABLE renditions (
    song_id      INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    format       TEXT    NOT NULL CHECK (format IN ('aac', 'ogg')),
    bitrate_kbps INTEGER NOT NULL CHECK (bitrate_kbps IN (64, 128, 320)),
    blob_key     TEXT    NOT NULL,
    size_bytes   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (song_id, version, format, bitrate_kbps)
);

-- Playlists (issue 6 adds playlist_songs and the API; search reads names now).
CREATE TABLE playlists (
    id            INTEGER PRIMARY KEY,
    owner_user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    description   TEXT    NOT NULL DEFAULT '',
    is_public     INTEGER NOT NULL DEFAULT 0 CHECK (is_public IN (0, 1)),
    popularity    INTEGER NOT NULL DEFAULT 0,
    name_key      TEXT    NOT NULL,
    search_text   TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    rank_key      INTEGER GENERATED ALWAYS AS ((CAST(log2(popularity + 1) * 4 AS INTEGER) << 40) | id) STORED
);
CREATE INDEX playlists_owner ON playlists(owner_user_id);
CREATE INDEX playlists_name_key_public ON playlists(name_key, rank_key) WHERE is_public;

-- Plays per song per hour (hour = unix seconds / 3600): the rollup issue
-- 6's play events feed, and the source of truth for trending. Triggers
-- fold every increase into songs.trend_log, the base-2 logarithm of
--     sum over plays of 2^((hour - 482136) / 24)
-- (482136 = 2025-01-01T00 in hours): plays weighted by a 24-hour
-- half-life against a fixed epoch, so ordering by trend_log is ordering
-- by decayed plays at any moment, and logarithms never overflow. Adding b
-- to a = log2(x) is max(a,b) + log2(1 + 2^(min(a,b) - max(a,b))), with the
-- smaller term dropped when it is 60 halvings down. Decreases are ignored.
CREATE TABLE song_plays_hourly (
    song_id INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    hour    INTEGER NOT NULL,
    plays   INTEGER NOT NULL CHECK (plays >= 0),
    PRIMARY KEY (song_id, hour)
);
CREATE INDEX song_plays_hourly_hour ON song_plays_hourly(hour, song_id, plays);
CREATE TRIGGER song_plays_trend_insert AFTER INSERT ON song_plays_hourly WHEN new.plays > 0 BEGIN
    UPDATE songs SET trend_log = CASE
        WHEN trend_log < log2(new.plays) + (new.hour - 482136) / 24.0 - 60 THEN log2(new.plays) + (new.hour - 482136) / 24.0
        WHEN log2(new.plays) + (new.hour - 482136) / 24.0 < trend_log - 60 THEN trend_log
        ELSE max(trend_log, log2(new.plays) + (new.hour - 482136) / 24.0)
           + log2(1 + pow(2, -abs(trend_log - (log2(new.plays) + (new.hour - 482136) / 24.0)))) END
    WHERE id = new.song_id;
END;
CREATE TRIGGER song_plays_trend_update AFTER UPDATE OF plays ON song_plays_hourly WHEN new.plays > old.plays BEGIN
    UPDATE songs SET trend_log = CASE
        WHEN trend_log < log2(new.plays - old.plays) + (new.hour - 482136) / 24.0 - 60 THEN log2(new.plays - old.plays) + (new.hour - 482136) / 24.0
        WHEN log2(new.plays - old.plays) + (new.hour - 482136) / 24.0 < trend_log - 60 THEN trend_log
        ELSE max(trend_log, log2(new.plays - old.plays) + (new.hour - 482136) / 24.0)
           + log2(1 + pow(2, -abs(trend_log - (log2(new.plays - old.plays) + (new.hour - 482136) / 24.0)))) END
    WHERE id = new.song_id;
END;

-- Full-text indexes: FTS5 external-content tables over views of the rows
-- that may be listed (ready songs, public playlists), with rank_key as the
-- FTS rowid: a MATCH read in descending rowid order yields the most popular
-- matches first and stops at the LIMIT, however common the words. Only
-- rowids are read back, so the views are only scanned by 'rebuild'.
-- Triggers keep the indexes in step; the seed command suspends them and
-- rebuilds at the end. Prefix indexes of 1 to 8 characters serve
-- as-you-type prefixes without merging term lists.
CREATE VIEW songs_visible AS
    SELECT rank_key, search_text, search_extra FROM songs WHERE status = 'ready';
CREATE VIRTUAL TABLE songs_fts USING fts5(
    search_text, search_extra,
    content = 'songs_visible', content_rowid = 'rank_key',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6 7 8'
);
CREATE TRIGGER songs_fts_insert AFTER INSERT ON songs WHEN new.status = 'ready' BEGIN
    INSERT INTO songs_fts(rowid, search_text, search_extra) VALUES (new.rank_key, new.search_text, new.search_extra);
END;
CREATE TRIGGER songs_fts_delete AFTER DELETE ON songs WHEN old.status = 'ready' BEGIN
    INSERT INTO songs_fts(songs_fts, rowid, search_text, search_extra) VALUES ('delete', old.rank_key, old.search_text, old.search_extra);
END;
CREATE TRIGGER songs_fts_update AFTER UPDATE OF status, popularity, search_text, search_extra ON songs
WHEN old.status IS NOT new.status OR old.rank_key != new.rank_key
  OR old.search_text != new.search_text OR old.search_extra != new.search_extra BEGIN
    INSERT INTO songs_fts(songs_fts, rowid, search_text, search_extra)
        SELECT 'delete', old.rank_key, old.search_text, old.search_extra WHERE old.status = 'ready';
    INSERT INTO songs_fts(rowid, search_text, search_extra)
        SELECT new.rank_key, new.search_text, new.search_extra WHERE new.status = 'ready';
END;

CREATE VIEW artists_visible AS SELECT rank_key, search_text FROM artists;
CREATE VIRTUAL TABLE artists_fts USING fts5(
    search_text,
    content = 'artists_visible', content_rowid = 'rank_key',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6 7 8'
);
CREATE TRIGGER artists_fts_insert AFTER INSERT ON artists BEGIN
    INSERT INTO artists_fts(rowid, search_text) VALUES (new.rank_key, new.search_text);
END;
CREATE TRIGGER artists_fts_delete AFTER DELETE ON artists BEGIN
    INSERT INTO artists_fts(artists_fts, rowid, search_text) VALUES ('delete', old.rank_key, old.search_text);
END;
CREATE TRIGGER artists_fts_update AFTER UPDATE OF popularity, search_text ON artists
WHEN old.rank_key != new.rank_key OR old.search_text != new.search_text BEGIN
    INSERT INTO artists_fts(artists_fts, rowid, search_text) VALUES ('delete', old.rank_key, old.search_text);
    INSERT INTO artists_fts(rowid, search_text) VALUES (new.rank_key, new.search_text);
END;

CREATE VIEW albums_visible AS SELECT rank_key, search_text, search_extra FROM albums;
CREATE VIRTUAL TABLE albums_fts USING fts5(
    search_text, search_extra,
    content = 'albums_visible', content_rowid = 'rank_key',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6 7 8'
);
CREATE TRIGGER albums_fts_insert AFTER INSERT ON albums BEGIN
    INSERT INTO albums_fts(rowid, search_text, search_extra) VALUES (new.rank_key, new.search_text, new.search_extra);
END;
CREATE TRIGGER albums_fts_delete AFTER DELETE ON albums BEGIN
    INSERT INTO albums_fts(albums_fts, rowid, search_text, search_extra) VALUES ('delete', old.rank_key, old.search_text, old.search_extra);
END;
CREATE TRIGGER albums_fts_update AFTER UPDATE OF popularity, search_text, search_extra ON albums
WHEN old.rank_key != new.rank_key OR old.search_text != new.search_text OR old.search_extra != new.search_extra BEGIN
    INSERT INTO albums_fts(albums_fts, rowid, search_text, search_extra) VALUES ('delete', old.rank_key, old.search_text, old.search_extra);
    INSERT INTO albums_fts(rowid, search_text, search_extra) VALUES (new.rank_key, new.search_text, new.search_extra);
END;

CREATE VIEW playlists_visible AS SELECT rank_key, search_text FROM playlists WHERE is_public;
CREATE VIRTUAL TABLE playlists_fts USING fts5(
    search_text,
    content = 'playlists_visible', content_rowid = 'rank_key',
    tokenize = 'unicode61 remove_diacritics 2', prefix = '1 2 3 4 5 6 7 8'
);
CREATE TRIGGER playlists_fts_insert AFTER INSERT ON playlists WHEN new.is_public BEGIN
    INSERT INTO playlists_fts(rowid, search_text) VALUES (new.rank_key, new.search_text);
END;
CREATE TRIGGER playlists_fts_delete AFTER DELETE ON playlists WHEN old.is_public BEGIN
    INSERT INTO playlists_fts(playlists_fts, rowid, search_text) VALUES ('delete', old.rank_key, old.search_text);
END;
CREATE TRIGGER playlists_fts_update AFTER UPDATE OF is_public, popularity, search_text ON playlists
WHEN old.is_public IS NOT new.is_public OR old.rank_key != new.rank_key OR old.search_text != new.search_text BEGIN
    INSERT INTO playlists_fts(playlists_fts, rowid, search_text)
        SELECT 'delete', old.rank_key, old.search_text WHERE old.is_public;
    INSERT INTO playlists_fts(rowid, search_text)
        SELECT new.rank_key, new.search_text WHERE new.is_public;
END;
