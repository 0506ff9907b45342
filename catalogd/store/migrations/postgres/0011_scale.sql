-- Several catalogd on one database (issue 15, items 3–5).
--
-- leases: named leases held by one catalogd at a time (the purge
-- dispatcher's, see leases.go). expires_at is the database's clock, so
-- instances with skewed clocks agree on who holds a lease.
CREATE TABLE leases (
    name       TEXT        COLLATE "C" PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);

-- login_limits: the login and registration rate limits of every
-- instance (see limits.go): per key ("a:" account, "ip:" address) the
-- theoretical arrival time of the generic cell rate algorithm, unix ms.
-- UNLOGGED: no WAL, so not on replicas and emptied by a crash, which only
-- forgives the attempts of one window.
CREATE UNLOGGED TABLE login_limits (
    key TEXT   COLLATE "C" PRIMARY KEY,
    tat BIGINT NOT NULL
) WITH (fillfactor = 70);

-- play_events partitioned by the UTC day of started_at (see partitions.go):
-- retention drops whole days instead of deleting rows. A primary key of a
-- partitioned table must hold the partition key, so it is (user_id,
-- event_id, started_at); RecordEvents still records an event id once per
-- user (it looks the ids up first, under the user's row lock).
-- The old table's rows are copied into partitions made for their days,
-- and days from 8 days ago (the oldest an event may be when it arrives,
-- and a day of slack) to 3 days ahead are made too.
ALTER TABLE play_events RENAME TO play_events_unpartitioned;
ALTER INDEX play_events_recent RENAME TO play_events_unpartitioned_recent;
ALTER TABLE play_events_unpartitioned RENAME CONSTRAINT play_events_pkey TO play_events_unpartitioned_pkey;
CREATE TABLE play_events (
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    event_id    TEXT    COLLATE "C" NOT NULL,
    song_id     BIGINT  NOT NULL REFERENCES songs(id) ON DELETE CASCADE,
    started_at  BIGINT  NOT NULL,
    ms_played   BIGINT  NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('search', 'playlist', 'album', 'artist', 'other')),
    completed   BOOLEAN NOT NULL,
    counted     BOOLEAN NOT NULL,
    received_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, event_id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX play_events_recent ON play_events(user_id, started_at) WHERE counted;

DO $$
DECLARE
    today BIGINT := floor(extract(epoch FROM now()) / 86400)::BIGINT;
    lo    BIGINT;
    hi    BIGINT;
    d     BIGINT;
BEGIN
    SELECT min(started_at) / 86400000, max(started_at) / 86400000 INTO lo, hi FROM play_events_unpartitioned;
    lo := least(coalesce(lo, today - 8), today - 8);
    hi := greatest(coalesce(hi, today + 3), today + 3);
    FOR d IN lo..hi LOOP
        IF d < today - 8 AND NOT EXISTS (SELECT 1 FROM play_events_unpartitioned
                WHERE started_at >= d::BIGINT * 86400000 AND started_at < (d::BIGINT + 1) * 86400000) THEN
            CONTINUE; -- no empty partitions for old days without rows
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF play_events FOR VALUES FROM (%s) TO (%s)',
            'play_events_p' || to_char(to_timestamp(d * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'),
            d::BIGINT * 86400000, (d::BIGINT + 1) * 86400000);
    END LOOP;
END $$;

INSERT INTO play_events SELECT user_id, event_id, song_id, started_at, ms_played, source, completed, counted, received_at
FROM play_events_unpartitioned;
DROP TABLE play_events_unpartitioned;
