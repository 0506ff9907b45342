package catalogd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"riff/catalogd/store"
	"riff/internal/config"
)

// runSeed implements `riff catalogd seed -db DSN -songs N`: it fills the
// database with a synthetic catalog (see store.Seed), rebuilds the search
// indexes and refreshes the planner's statistics, then prints a summary.
func runSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("catalogd seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("db", "file:data/riff.db", "database: file:PATH (SQLite) or postgres://… (PostgreSQL)")
	songs := fs.Int("songs", 10_000, "how many songs to add")
	seed := fs.Uint64("seed", 1, "random seed (the same seed makes the same catalog)")
	trending := fs.Int("trending-songs", 0, "songs given a week of plays (default songs/50, at most 20000; -1 for none)")
	quiet := fs.Bool("quiet", false, "do not print progress")
	if err := config.Load(fs, args, getenv, "catalogd-seed"); err != nil {
		return err
	}
	if *songs < 1 {
		return errors.New("catalogd seed: -songs must be at least 1")
	}
	st, err := store.Open(ctx, *dbURL, store.Options{})
	if err != nil {
		return fmt.Errorf("catalogd seed: %w", err)
	}
	defer st.Close()
	start := time.Now()
	last := start
	stats, err := st.Seed(ctx, store.SeedOptions{
		Songs: *songs, Seed: *seed, TrendingSongs: *trending,
		Progress: func(done int) {
			if *quiet || time.Since(last) < 2*time.Second {
				return
			}
			last = time.Now()
			el := time.Since(start).Seconds()
			fmt.Fprintf(stderr, "seed: %d/%d songs (%.0f/s)\n", done, *songs, float64(done)/el)
		},
	})
	if err != nil {
		return fmt.Errorf("catalogd seed: %w", err)
	}
	loaded := time.Since(start)
	if err := st.Optimize(ctx); err != nil {
		return fmt.Errorf("catalogd seed: %w", err)
	}
	fmt.Fprintf(stdout, "seeded %d songs, %d albums, %d artists (%d users), %d credits, %d playlists, %d play rows in %s (analyze %s)\n",
		stats.Songs, stats.Albums, stats.Artists, stats.Users, stats.Credits, stats.Playlists, stats.PlayRows,
		loaded.Round(time.Millisecond), (time.Since(start) - loaded).Round(time.Millisecond))
	return nil
}
