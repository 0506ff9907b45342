package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"riff/catalogd/store/storetest"
)

// benchDBs runs fn on a SQLite store and, with RIFF_TEST_POSTGRES, a
// PostgreSQL one, each with a seeded catalog of 20,000 songs. With
// RIFF_BENCH_DB (a PostgreSQL URL whose search_path is a schema of its
// own: see catalogd/bench_test.go) the PostgreSQL one is that database,
// seeded with RIFF_BENCH_SONGS songs (default 20,000) when it holds none
// and kept between runs:
//
//	RIFF_BENCH_SONGS=1000000 RIFF_BENCH_DB="$PG&search_path=riff_bench,public" go test -run '^$' -bench '/postgres' ./catalogd/store
func benchDBs(b *testing.B, fn func(b *testing.B, s *Store, songs []int64, users []int64)) {
	for _, d := range []string{"sqlite", "postgres"} {
		b.Run(d, func(b *testing.B) {
			ctx := context.Background()
			var dsn string
			songs := 20_000
			if d == "sqlite" {
				dsn = "file:" + filepath.Join(b.TempDir(), "riff.db")
			} else if dsn = os.Getenv("RIFF_BENCH_DB"); dsn != "" {
				if v := os.Getenv("RIFF_BENCH_SONGS"); v != "" {
					n, err := strconv.Atoi(v)
					if err != nil || n < 1 {
						b.Fatalf("RIFF_BENCH_SONGS=%q", v)
					}
					songs = n
				}
			} else {
				dsn = storetest.PostgresDSN(b)
			}
			s, err := Open(ctx, dsn, Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			if have, err := s.SampleSongIDs(ctx, 1, 1); err != nil {
				b.Fatal(err)
			} else if len(have) == 0 {
				if _, err := s.Seed(ctx, SeedOptions{Songs: songs, Seed: 1, TrendingSongs: -1}); err != nil {
					b.Fatal(err)
				}
			}
			sample, err := s.SampleSongIDs(ctx, 2000, 1)
			if err != nil || len(sample) == 0 {
				b.Fatalf("sample: %d songs, %v", len(sample), err)
			}
			// Users of this run only (a kept database has earlier ones).
			run := rand.Uint64()
			var users []int64
			for i := range 50 {
				u, err := s.CreateUser(ctx, NewUser{Email: fmt.Sprintf("bench%d-%x@example.com", i, run), PasswordHash: "h", DisplayName: "B"})
				if err != nil {
					b.Fatal(err)
				}
				users = append(users, u.ID)
			}
			fn(b, s, sample, users)
		})
	}
}

// BenchmarkRecordEvents ingests batches of 500 play events (50 users,
// each playing one song after another from two days ago, about 75%
// counted) and reports events per
// second, and per CPU-second of this process (on PostgreSQL the server's
// CPU is not in it). Songs are drawn from a sample of 2,000 uniformly
// (the worst case: most plays move a little-played song's popularity
// bucket, which rewrites its full-text index entry) or Zipf-skewed, as
// listening is.
//
//	go test -run '^$' -bench RecordEvents -benchtime 40x ./catalogd/store
func BenchmarkRecordEvents(b *testing.B) {
	benchDBs(b, func(b *testing.B, s *Store, songs, users []int64) {
		ctx := context.Background()
		if s.Dialect() == Postgres {
			// As in production with the default -events-retention: a
			// partition per day for 90 days (Open makes the last 8).
			today := time.Now().UnixMilli() / dayMs
			for d := today - 90; d < today-8; d++ {
				mustExec(b, s, fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s PARTITION OF play_events FOR VALUES FROM (%d) TO (%d)", partitionName(d), d*dayMs, (d+1)*dayMs))
			}
		}
		rng := rand.New(rand.NewPCG(1, 1))
		zipf := rand.NewZipf(rng, 1.1, 1, uint64(len(songs)-1))
		now := time.Now()
		batch := make([]PlayEvent, MaxEventBatch)
		seq := 0
		next := map[int64]time.Time{} // per user, when the next play starts
		for _, u := range users {
			next[u] = now.Add(-48 * time.Hour)
		}
		for _, dist := range []string{"uniform", "zipf"} {
			b.Run(dist, func(b *testing.B) {
				n0, start, cpu0 := seq, time.Now(), processCPU()
				for i := 0; b.Loop(); i++ {
					user := users[i%len(users)]
					for j := range batch {
						seq++
						song := songs[rng.IntN(len(songs))]
						if dist == "zipf" {
							song = songs[zipf.Uint64()]
						}
						// One user's plays follow each other (overlapping
						// ones would be rejected), about 40 an hour.
						ms := int64(10_000 + rng.IntN(80_000))
						batch[j] = PlayEvent{EventID: fmt.Sprintf("ev-%d", seq), SongID: song,
							StartedAt: next[user], MSPlayed: ms, Source: SourcePlaylist}
						next[user] = next[user].Add(time.Duration(ms)*time.Millisecond + 30*time.Second)
					}
					if _, err := s.RecordEvents(ctx, user, batch); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(seq-n0)/time.Since(start).Seconds(), "events/s")
				b.ReportMetric(float64(seq-n0)/(processCPU()-cpu0).Seconds(), "events/cpu-s")
			})
		}
	})
}

// processCPU is the CPU time (user + system) this process has used: on a
// shared machine, work per CPU-second moves less than work per second.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPlaylist10k times edits of a playlist holding 10,000 items
// (9,999 plus the one each iteration adds and removes): an insert at a
// random position, removing one item, removing a song's occurrences.
//
//	go test -run '^$' -bench Playlist10k -benchtime 200x ./catalogd/store
func BenchmarkPlaylist10k(b *testing.B) {
	benchDBs(b, func(b *testing.B, s *Store, songs, users []int64) {
		ctx := context.Background()
		ed := Editor{UserID: users[0]}
		p, err := s.CreatePlaylist(ctx, users[0], NewPlaylist{Name: "Big"})
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(2, 2))
		// 9,999 items of all but the last sampled song.
		for left := MaxPlaylistItems - 1; left > 0; {
			n := min(left, MaxPlaylistAdd)
			ids := make([]int64, n)
			for j := range ids {
				ids[j] = songs[rng.IntN(len(songs)-1)]
			}
			if _, err := s.AddPlaylistSongs(ctx, p.ID, ed, ids, -1); err != nil {
				b.Fatal(err)
			}
			left -= n
		}
		marker := songs[len(songs)-1]
		b.Run("add", func(b *testing.B) {
			for b.Loop() {
				res, err := s.AddPlaylistSongs(ctx, p.ID, ed, []int64{marker}, rng.IntN(MaxPlaylistItems))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := s.RemovePlaylistItem(ctx, p.ID, ed, res.Added[0].ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
		if s.Dialect() == Postgres {
			// The same once VACUUM has set the visibility map of the
			// playlist's pages: the walk to the position becomes an
			// index-only scan (autovacuum gets there on its own, later).
			b.Run("add-vacuumed", func(b *testing.B) {
				mustExec(b, s, "VACUUM playlist_items")
				for b.Loop() {
					res, err := s.AddPlaylistSongs(ctx, p.ID, ed, []int64{marker}, rng.IntN(MaxPlaylistItems))
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					if _, err := s.RemovePlaylistItem(ctx, p.ID, ed, res.Added[0].ID); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			})
		}
		b.Run("remove-item", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				res, err := s.AddPlaylistSongs(ctx, p.ID, ed, []int64{marker}, rng.IntN(MaxPlaylistItems))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.RemovePlaylistItem(ctx, p.ID, ed, res.Added[0].ID); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("remove-song", func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				if _, err := s.AddPlaylistSongs(ctx, p.ID, ed, []int64{marker}, rng.IntN(MaxPlaylistItems)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.RemovePlaylistSong(ctx, p.ID, ed, marker); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("reorder", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.ReorderPlaylist(ctx, p.ID, ed, rng.IntN(MaxPlaylistItems-1), 1, rng.IntN(MaxPlaylistItems)); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("read-page", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.PlaylistItems(ctx, p.ID, 50, rng.IntN(MaxPlaylistItems-50)); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
