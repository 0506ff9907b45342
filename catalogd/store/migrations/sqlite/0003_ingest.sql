-- Uploads and the packaging job queue (issue 7).
--
-- An upload is one audio file an artist sent for a song: the original is
-- kept in the blob store under originals/{song}/{upload}.{ext}, and the
-- upload names the version it publishes and the metadata it brings (form
-- fields merged over the file's tags). sha256 finds the same file sent
-- again by the same artist.
CREATE TABLE uploads (
    id           INTEGER PRIMARY KEY,
    song_id      INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    artist_id    INTEGER NOT NULL REFERENCES artists(id),
    version      INTEGER NOT NULL,                  -- the v{N} this upload publishes
    sha256       TEXT    NOT NULL,                  -- hex
    blob_key     TEXT    NOT NULL,                  -- originals/{song}/{upload}.{ext}
    size_bytes   INTEGER NOT NULL,
    container    TEXT    NOT NULL,                  -- from the probe: flac, wav, mp3, mp4, ogg, aiff
    codec        TEXT    NOT NULL,
    duration_ms  INTEGER NOT NULL,
    bitrate      INTEGER NOT NULL,                  -- bits/s of the original, 0 if unknown
    title        TEXT    NOT NULL,                  -- merged metadata applied when the version is published
    genre        TEXT    NOT NULL,
    track_number INTEGER NOT NULL,
    explicit     INTEGER NOT NULL CHECK (explicit IN (0, 1)),
    created_at   INTEGER NOT NULL,
    UNIQUE (song_id, version)
);
CREATE INDEX uploads_artist_sha ON uploads(artist_id, sha256);

-- The job queue. A worker claims a job whose time has come (state
-- 'queued', run_at reached) or whose lease ran out (state 'running',
-- lease_until passed: its worker died), raising attempts, and renews the
-- lease while it works. kind 'package' publishes an upload; kind 'gc'
-- deletes a superseded or taken-down version's objects.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL CHECK (kind IN ('package', 'gc')),
    song_id      INTEGER NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    upload_id    INTEGER REFERENCES uploads(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at       INTEGER NOT NULL,                  -- not claimed before (backoff, GC delay)
    lease_owner  TEXT    NOT NULL DEFAULT '',
    lease_until  INTEGER NOT NULL DEFAULT 0,
    stage        TEXT    NOT NULL DEFAULT '',       -- progress while running
    percent      INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',       -- why the last attempt failed, for people
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_queued ON jobs(run_at) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs(lease_until) WHERE state = 'running';
CREATE INDEX jobs_song ON jobs(song_id, id);
