-- Riff catalog schema, version 2 (SQLite): the listener's library (issue
-- 6). Playlist items, likes, follows, play events and their rollups.

-- Playlists gain an edit version (the snapshot id is derived from it; every
-- edit bumps it under the playlist's row lock), an item count (the 10,000
-- item limit is checked without counting) and a follower count.
ALTER TABLE playlists ADD COLUMN version    INTEGER NOT NULL DEFAULT 1;
ALTER TABLE playlists ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE playlists ADD COLUMN followers  INTEGER NOT NULL DEFAULT 0;

-- Items of a playlist in pos order (ties, which edits never make, by id).
-- pos is a gapped ordering key: an insert takes keys between its
-- neighbours and renumbers the playlist only when no key is left there.
CREATE TABLE playlist_items (
    id          INTEGER PRIMARY KEY,
    playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    song_id     INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    pos         INTEGER NOT NULL,
    added_by    INTEGER NOT NULL,
    added_at    INTEGER NOT NULL
);
CREATE INDEX playlist_items_order ON playlist_items(playlist_id, pos, id);
CREATE INDEX playlist_items_song ON playlist_items(playlist_id, song_id);
CREATE INDEX playlist_items_song_only ON playlist_items(song_id);

CREATE TABLE playlist_follows (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    playlist_id INTEGER NOT NULL REFERENCES playlists(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (user_id, playlist_id)
);
CREATE INDEX playlist_follows_playlist ON playlist_follows(playlist_id);

CREATE TABLE song_likes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    song_id    INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, song_id)
);
CREATE INDEX song_likes_newest ON song_likes(user_id, created_at, song_id);
CREATE INDEX song_likes_song ON song_likes(song_id);

-- Artists gain follower and (counted) play totals, kept by the store in
-- the transaction that changes follows or ingests plays.
ALTER TABLE artists ADD COLUMN followers  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE artists ADD COLUMN play_count INTEGER NOT NULL DEFAULT 0;

CREATE TABLE artist_follows (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    artist_id  INTEGER NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, artist_id)
);
CREATE INDEX artist_follows_newest ON artist_follows(user_id, created_at, artist_id);
CREATE INDEX artist_follows_artist ON artist_follows(artist_id);

-- Play events as players report them, once per (user, client event id):
-- a replayed batch inserts nothing. counted: the play reached 30 s (or the
-- whole song when shorter). Times are unix milliseconds.
CREATE TABLE play_events (
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_id    TEXT    NOT NULL,
    song_id     INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    started_at  INTEGER NOT NULL,
    ms_played   INTEGER NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('search', 'playlist', 'album', 'artist', 'other')),
    completed   INTEGER NOT NULL CHECK (completed IN (0, 1)),
    counted     INTEGER NOT NULL CHECK (counted IN (0, 1)),
    received_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, event_id)
) WITHOUT ROWID;
CREATE INDEX play_events_recent ON play_events(user_id, started_at) WHERE counted;

-- Per-song daily rollup (day = unix seconds / 86400, UTC): counted plays,
-- distinct listeners with a counted play, and milliseconds played by every
-- event. song_listeners_daily remembers who was counted.
CREATE TABLE song_plays_daily (
    song_id   INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    day       INTEGER NOT NULL,
    plays     INTEGER NOT NULL DEFAULT 0,
    listeners INTEGER NOT NULL DEFAULT 0,
    ms_played INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (song_id, day)
);
CREATE TABLE song_listeners_daily (
    song_id INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    PRIMARY KEY (song_id, day, user_id)
) WITHOUT ROWID;
