-- Retention of song_listeners_daily (see partitions.go): rows older than
-- MinEventsRetention are deleted in small batches, found by day. (On
-- PostgreSQL the table is partitioned by day instead.)
CREATE INDEX song_listeners_daily_day ON song_listeners_daily(day);
