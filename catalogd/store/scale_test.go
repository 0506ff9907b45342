package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/catalogd/store/storetest"
)

// TestLeases: one holder at a time; the holder renews; another takes over
// once the lease expired or was released.
func TestLeases(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		acquire := func(holder string, ttl time.Duration) bool {
			t.Helper()
			ok, err := s.AcquireLease(ctx, "purge", holder, ttl)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !acquire("a", time.Hour) || !acquire("a", time.Hour) {
			t.Fatal("a cannot take or renew a free lease")
		}
		if acquire("b", time.Hour) {
			t.Fatal("b took a's live lease")
		}
		if err := s.ReleaseLease(ctx, "purge", "b"); err != nil || acquire("b", time.Hour) {
			t.Fatalf("b released a's lease (%v)", err)
		}
		if err := s.ReleaseLease(ctx, "purge", "a"); err != nil || !acquire("b", 50*time.Millisecond) {
			t.Fatalf("b cannot take a released lease (%v)", err)
		}
		// Expiry: PostgreSQL runs the term on its own clock, SQLite on the
		// store's.
		clock.Advance(time.Second)
		time.Sleep(100 * time.Millisecond)
		if !acquire("a", time.Hour) {
			t.Fatal("a cannot take b's expired lease")
		}
	})
}

// TestLoginLimits: the shared limiter spends burst attempts, then refuses
// with the wait for the next; keys are separate; Reset forgets; attempts
// racing from many goroutines never spend more than the burst.
func TestLoginLimits(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		spend := func(key string) (bool, time.Duration) {
			t.Helper()
			ok, wait, err := s.SpendAttempt(ctx, key, 3, 3*time.Minute, clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			return ok, wait
		}
		for i := range 3 {
			if ok, _ := spend("a:x"); !ok {
				t.Fatalf("attempt %d refused", i+1)
			}
		}
		if ok, wait := spend("a:x"); ok || wait != time.Minute {
			t.Errorf("4th attempt = %v, wait %v; want refused, 1m", ok, wait)
		}
		if ok, _ := spend("ip:1.2.3.4"); !ok {
			t.Error("another key was refused")
		}
		clock.Advance(30 * time.Second)
		if ok, wait := spend("a:x"); ok || wait != 30*time.Second {
			t.Errorf("after 30s = %v, wait %v; want refused, 30s", ok, wait)
		}
		clock.Advance(30 * time.Second)
		if ok, _ := spend("a:x"); !ok {
			t.Error("refused after a minute")
		}
		if err := s.ResetAttempts(ctx, "a:x"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := spend("a:x"); !ok {
			t.Error("refused after reset")
		}
		clock.Advance(time.Hour)
		if n, err := s.PruneAttempts(ctx, clock.Now()); err != nil || n != 2 {
			t.Errorf("pruned %d, %v; want 2", n, err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		allowed := 0
		for range 20 {
			wg.Go(func() {
				ok, _, err := s.SpendAttempt(ctx, "a:race", 5, time.Hour, clock.Now())
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if allowed != 5 {
			t.Errorf("20 racing attempts, %d allowed; want the burst, 5", allowed)
		}
	})
}

// BenchmarkSpendAttempt is the cost of one login attempt in the shared
// limiter (one UPSERT), over a spread of keys; postgres-logged is the same
// table written to the WAL, for comparison with UNLOGGED.
//
//	go test -run '^$' -bench SpendAttempt -benchtime 3000x ./catalogd/store
func BenchmarkSpendAttempt(b *testing.B) {
	for _, name := range []string{"sqlite", "postgres", "postgres-logged"} {
		b.Run(name, func(b *testing.B) {
			clock := newTestClock()
			var s *Store
			if name == "sqlite" {
				s = openSQLite(b, clock)
			} else {
				s = openPostgres(b, clock)
			}
			if name == "postgres-logged" { // what UNLOGGED saves
				mustExec(b, s, "ALTER TABLE login_limits SET LOGGED")
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, _, err := s.SpendAttempt(ctx, fmt.Sprintf("ip:10.0.%d.%d", i/256%256, i%256), 30, 15*time.Minute, clock.Now()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEventRetention: on PostgreSQL, partitions exist from
// MinEventsRetention ago to PartitionsAhead days ahead, each event lands in
// its day's partition, and retention drops whole old days (SQLite deletes
// the rows); the rollups stay.
func TestEventRetention(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		ann, _, songs := librarySongs(t, s, 2)
		now := clock.Now() // 2025-06-01 12:00 UTC
		if s.Dialect() == Postgres {
			parts, err := s.EventPartitions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"play_events_p20250524", "play_events_p20250601", "play_events_p20250604"} {
				if !slices.Contains(parts, want) {
					t.Errorf("partitions %v lack %s", parts, want)
				}
			}
		}
		// Plays on six consecutive days, one a day, the last today.
		for d := range 6 {
			at := now.Add(-time.Duration(5-d) * 24 * time.Hour)
			ev := PlayEvent{EventID: fmt.Sprintf("d%d", d), SongID: songs[1].ID, StartedAt: at, MSPlayed: 20_000, Source: SourceAlbum}
			if res, err := s.RecordEvents(ctx, ann.ID, []PlayEvent{ev}); err != nil || res.Counted != 1 {
				t.Fatalf("day %d: %+v, %v", d, res, err)
			}
		}
		if s.Dialect() == Postgres {
			for d := range 6 {
				day := now.Add(-time.Duration(5-d) * 24 * time.Hour)
				var n int
				if err := s.w.QueryRowContext(ctx, fmt.Sprintf("SELECT count(*) FROM %s WHERE event_id = $1", partitionName(day.UnixMilli()/dayMs)),
					fmt.Sprintf("d%d", d)).Scan(&n); err != nil || n != 1 {
					t.Errorf("event d%d in partition of %s: %d, %v", d, day.Format(time.DateOnly), n, err)
				}
			}
		}
		daily := func() []DailyPlays {
			ds, err := s.SongDailyPlays(ctx, songs[1].ID, now.Add(-10*24*time.Hour), now)
			if err != nil {
				t.Fatal(err)
			}
			return ds
		}
		before := daily()
		stats, _ := s.SongByID(ctx, songs[1].ID)
		// Six days on, a retention of MinEventsRetention (8 days) keeps the
		// days from 2025-05-30 on: the three last events.
		clock.Advance(6 * 24 * time.Hour)
		n, err := s.PruneEvents(ctx, clock.Now(), time.Hour) // raised to the minimum
		if err != nil {
			t.Fatal(err)
		}
		var left int
		if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM play_events").Scan(&left); err != nil || left != 3 {
			t.Errorf("%d events left, want 3 (%v)", left, err)
		}
		// song_listeners_daily keeps the same days (its retention is
		// always MinEventsRetention): one row a day, three left.
		if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM song_listeners_daily").Scan(&left); err != nil || left != 3 {
			t.Errorf("%d listener rows left, want 3 (%v)", left, err)
		}
		if s.Dialect() == Postgres {
			parts, _ := s.EventPartitions(ctx)
			if n < 6 || slices.Contains(parts, "play_events_p20250529") || !slices.Contains(parts, "play_events_p20250530") ||
				!slices.Contains(parts, "play_events_p20250610") {
				t.Errorf("dropped %d; partitions now %v", n, parts)
			}
			lparts, _ := s.ListenerPartitions(ctx)
			if slices.Contains(lparts, "song_listeners_daily_p20250529") || !slices.Contains(lparts, "song_listeners_daily_p20250530") ||
				!slices.Contains(lparts, "song_listeners_daily_p20250610") {
				t.Errorf("listener partitions now %v", lparts)
			}
		} else if n != 6 {
			t.Errorf("deleted %d rows, want 6 (3 events, 3 listener rows)", n)
		}
		if after := daily(); !slices.Equal(before, after) || len(after) != 6 {
			t.Errorf("rollup changed by retention: %+v → %+v", before, after)
		}
		if so, _ := s.SongByID(ctx, songs[1].ID); so.Popularity != stats.Popularity {
			t.Errorf("popularity %d → %d", stats.Popularity, so.Popularity)
		}
		// A new event today lands (today's partitions exist), and a
		// listener still counts once per song and day: a second play adds
		// no listener row and no popularity.
		if res, err := s.RecordEvents(ctx, ann.ID, []PlayEvent{{EventID: "new", SongID: songs[0].ID, StartedAt: clock.Now(),
			MSPlayed: 10_000, Source: SourceAlbum}}); err != nil || res.Recorded != 1 {
			t.Errorf("event after retention: %+v, %v", res, err)
		}
		once, _ := s.SongByID(ctx, songs[0].ID)
		if res, err := s.RecordEvents(ctx, ann.ID, []PlayEvent{{EventID: "again", SongID: songs[0].ID, StartedAt: clock.Now().Add(-time.Minute),
			MSPlayed: 10_000, Source: SourceAlbum}}); err != nil || res.Recorded != 1 {
			t.Errorf("second event after retention: %+v, %v", res, err)
		}
		if twice, _ := s.SongByID(ctx, songs[0].ID); twice.Popularity != once.Popularity {
			t.Errorf("a second play the same day moved popularity %d → %d", once.Popularity, twice.Popularity)
		}
		if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM song_listeners_daily").Scan(&left); err != nil || left != 4 {
			t.Errorf("%d listener rows after two plays of one song today, want 4 (%v)", left, err)
		}
	})
}

// TestEventsPartitionMigration: migration 0011 turns an unpartitioned
// play_events with rows into the partitioned table, keeping every row
// (each in its day's partition) and the rules (a replayed event is a
// duplicate).
func TestEventsPartitionMigration(t *testing.T) {
	clock := newTestClock()
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ann, _, songs := librarySongs(t, s, 2)
	now := clock.Now()
	var batch []PlayEvent
	for i := range 50 {
		batch = append(batch, PlayEvent{EventID: fmt.Sprintf("e%d", i), SongID: songs[i%2].ID,
			StartedAt: now.Add(-time.Duration(i) * 3 * time.Hour), MSPlayed: 5_000, Source: SourceAlbum})
	}
	if _, err := s.RecordEvents(ctx, ann.ID, batch); err != nil {
		t.Fatal(err)
	}
	// Back to the schema before 0011, rows and all.
	for _, q := range []string{
		`CREATE TABLE old_events AS SELECT * FROM play_events`,
		`DROP TABLE play_events`, `DROP TABLE leases`, `DROP TABLE login_limits`,
		`CREATE TABLE play_events (
			user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE, event_id TEXT COLLATE "C" NOT NULL,
			song_id BIGINT NOT NULL REFERENCES songs(id) ON DELETE CASCADE, started_at BIGINT NOT NULL,
			ms_played BIGINT NOT NULL, source TEXT NOT NULL, completed BOOLEAN NOT NULL, counted BOOLEAN NOT NULL,
			received_at BIGINT NOT NULL, PRIMARY KEY (user_id, event_id))`,
		`CREATE INDEX play_events_recent ON play_events(user_id, started_at) WHERE counted`,
		`INSERT INTO play_events SELECT * FROM old_events`, `DROP TABLE old_events`,
		`DELETE FROM schema_migrations WHERE version = 11`,
	} {
		mustExec(t, s, q)
	}
	var kind string
	if err := s.w.QueryRowContext(ctx, `SELECT relkind::text FROM pg_class WHERE oid = 'play_events'::regclass`).Scan(&kind); err != nil || kind != "r" {
		t.Fatalf("setup: play_events is %q (%v)", kind, err)
	}
	s.Close()
	s2, err := Open(ctx, dsn, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.w.QueryRowContext(ctx, `SELECT relkind::text FROM pg_class WHERE oid = 'play_events'::regclass`).Scan(&kind); err != nil || kind != "p" {
		t.Fatalf("after migration play_events is %q (%v), want partitioned", kind, err)
	}
	var n, wrong int
	if err := s2.w.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE tableoid::regclass::text <>
		'play_events_p' || to_char(to_timestamp(started_at / 1000) AT TIME ZONE 'UTC', 'YYYYMMDD')) FROM play_events`).Scan(&n, &wrong); err != nil || n != 50 || wrong != 0 {
		t.Errorf("after migration: %d rows (want 50), %d in the wrong partition (%v)", n, wrong, err)
	}
	res, err := s2.RecordEvents(ctx, ann.ID, batch[:10])
	if err != nil || res.Duplicates != 10 || res.Recorded != 0 {
		t.Errorf("replayed events after migration = %+v, %v", res, err)
	}
}

// TestListenersPartitionMigration: migration 0014 turns an unpartitioned
// song_listeners_daily with rows into the partitioned table, keeping every
// row in its day's partition, and a listener already counted on a day is
// still not counted again.
func TestListenersPartitionMigration(t *testing.T) {
	clock := newTestClock()
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ann, _, songs := librarySongs(t, s, 2) // songs[1] is 20 s long
	now := clock.Now()
	var batch []PlayEvent
	for i := range 20 {
		batch = append(batch, PlayEvent{EventID: fmt.Sprintf("e%d", i), SongID: songs[1].ID,
			StartedAt: now.Add(-time.Duration(i+1) * 7 * time.Hour), MSPlayed: 20_000, Source: SourceAlbum})
	}
	if res, err := s.RecordEvents(ctx, ann.ID, batch); err != nil || res.Counted < 5 {
		t.Fatalf("setup: %+v, %v", res, err)
	}
	var want int
	if err := s.w.QueryRowContext(ctx, "SELECT count(*) FROM song_listeners_daily").Scan(&want); err != nil || want < 5 {
		t.Fatalf("setup: %d listener rows (%v)", want, err)
	}
	// Back to the schema before 0014, rows and all.
	for _, q := range []string{
		`CREATE TABLE old_listeners AS SELECT * FROM song_listeners_daily`,
		`DROP TABLE song_listeners_daily`,
		`CREATE TABLE song_listeners_daily (song_id BIGINT NOT NULL, day BIGINT NOT NULL, user_id BIGINT NOT NULL,
			PRIMARY KEY (song_id, day, user_id))`,
		`INSERT INTO song_listeners_daily SELECT * FROM old_listeners`, `DROP TABLE old_listeners`,
		`DELETE FROM schema_migrations WHERE version = 14`,
	} {
		mustExec(t, s, q)
	}
	s.Close()
	s2, err := Open(ctx, dsn, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var kind string
	if err := s2.w.QueryRowContext(ctx, `SELECT relkind::text FROM pg_class WHERE oid = 'song_listeners_daily'::regclass`).Scan(&kind); err != nil || kind != "p" {
		t.Fatalf("after migration song_listeners_daily is %q (%v), want partitioned", kind, err)
	}
	var n, wrong int
	if err := s2.w.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE tableoid::regclass::text <>
		'song_listeners_daily_p' || to_char(to_timestamp(day * 86400) AT TIME ZONE 'UTC', 'YYYYMMDD')) FROM song_listeners_daily`).Scan(&n, &wrong); err != nil || n != want || wrong != 0 {
		t.Errorf("after migration: %d rows (want %d), %d in the wrong partition (%v)", n, want, wrong, err)
	}
	before, _ := s2.SongByID(ctx, songs[1].ID)
	if _, err := s2.RecordEvents(ctx, ann.ID, []PlayEvent{{EventID: "later", SongID: songs[1].ID, StartedAt: now.Add(-time.Minute),
		MSPlayed: 20_000, Source: SourceAlbum}}); err != nil {
		t.Fatal(err)
	}
	if after, _ := s2.SongByID(ctx, songs[1].ID); after.Popularity != before.Popularity {
		t.Errorf("a listener counted before the migration counted again: popularity %d → %d", before.Popularity, after.Popularity)
	}
}

// TestPlaylistItemsVacuumedSooner: on PostgreSQL migration 0013 sets
// playlist_items' autovacuum thresholds (so big playlists' pages become
// all-visible and the walk to an insert position stays in the index).
func TestPlaylistItemsVacuumedSooner(t *testing.T) {
	s, err := Open(context.Background(), storetest.PostgresDSN(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var opts string
	if err := s.w.QueryRowContext(context.Background(),
		`SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = 'playlist_items'::regclass`).Scan(&opts); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"autovacuum_vacuum_insert_scale_factor=0.01", "autovacuum_vacuum_scale_factor=0.02"} {
		if !strings.Contains(opts, want) {
			t.Errorf("playlist_items options %q lack %s", opts, want)
		}
	}
}
