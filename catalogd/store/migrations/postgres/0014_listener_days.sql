-- song_listeners_daily partitioned by day (see partitions.go). The table
-- only remembers who was already counted for a song on a day, so that a
-- listener adds 1 per song and UTC day; an event is accepted up to
-- EventRetention (7 days) after it started, so rows older than
-- MinEventsRetention (8 days) are never read again, and the counts live
-- on in the rollups. Unbounded, it grew by one row per listener, song and
-- day: at 50M users the largest table of the catalog. Retention drops
-- whole days, as for play_events.
-- The old table's rows are copied into partitions made for their days,
-- and days from 8 days ago to 3 days ahead are made too. day is days
-- since the unix epoch (UTC).
ALTER TABLE song_listeners_daily RENAME TO song_listeners_daily_unpartitioned;
ALTER TABLE song_listeners_daily_unpartitioned RENAME CONSTRAINT song_listeners_daily_pkey TO song_listeners_daily_unpartitioned_pkey;
CREATE TABLE song_listeners_daily (
    song_id BIGINT NOT NULL,
    day     BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    PRIMARY KEY (song_id, day, user_id)
) PARTITION BY RANGE (day);

DO $$
DECLARE
    today BIGINT := floor(extract(epoch FROM now()) / 86400)::BIGINT;
    lo    BIGINT;
    hi    BIGINT;
    d     BIGINT;
BEGIN
    SELECT min(day), max(day) INTO lo, hi FROM song_listeners_daily_unpartitioned;
    lo := least(coalesce(lo, today - 8), today - 8);
    hi := greatest(coalesce(hi, today + 3), today + 3);
    FOR d IN lo..hi LOOP
        IF d < today - 8 AND NOT EXISTS (SELECT 1 FROM song_listeners_daily_unpartitioned WHERE day = d) THEN
            CONTINUE; -- no empty partitions for old days without rows
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF song_listeners_daily FOR VALUES FROM (%s) TO (%s)',
            'song_listeners_daily_p' || to_char(to_timestamp(d * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD'), d, d + 1);
    END LOOP;
END $$;

INSERT INTO song_listeners_daily SELECT song_id, day, user_id FROM song_listeners_daily_unpartitioned;
DROP TABLE song_listeners_daily_unpartitioned;
