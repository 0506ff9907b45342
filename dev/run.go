package dev

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"riff/internal/config"
	"riff/internal/obs"
)

// Settings are riff dev's flags.
type Settings struct {
	Data             string
	Blob             string // "": the folder Data/blob
	CatalogdListen   string
	OriginListen     string
	EdgeListen       string
	EdgeAdminListen  string
	Demo             bool
	DemoSongs        int
	DemoLength       time.Duration
	LogLevel         string
	ReadyTimeout     time.Duration
	FFmpeg           string
	FFprobe          string
	PackagerParallel int
	TokenTTL         time.Duration
	GCDelay          time.Duration
	Workers          int
	EdgeCacheBytes   config.ByteSize // 0: the edge's default
	EdgeSliceBytes   config.ByteSize // 0: the edge's default
	EdgeHeapSlices   bool
	Regions          int // 1: one region; more: see regions.go
}

// Run starts catalogd, origin and edge on loopback and blocks until ctx is
// cancelled or one of them fails. It is parse → build → run: parseFlags
// checks the flags and touches nothing, resolveAddrs makes sure every
// address can be listened on (and picks the ports given as 0), and start
// makes the data folder and runs the daemons.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	s, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := resolveAddrs(&s); err != nil {
		return err
	}
	return start(ctx, s, getenv, stdout, stderr)
}

// parseFlags reads and checks riff dev's flags (and RIFF_DEV_* and a
// -config file). It has no side effects. Flags passed through to one
// daemon (-edge-slice-bytes, -workers, …) are checked by that daemon.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (Settings, error) {
	var s Settings
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.Data, "data", "data", "`folder` for the keys, the SQLite catalog and the blob folder")
	fs.StringVar(&s.Blob, "blob", "", "blob store `URL` for catalogd and origin: a folder, file:///abs/path or s3://bucket?endpoint=…&path_style=true (credentials from the AWS default chain); default: the folder blob/ under -data")
	fs.StringVar(&s.CatalogdListen, "catalogd-listen", "127.0.0.1:8080", "catalogd `address`")
	fs.StringVar(&s.OriginListen, "origin-listen", "127.0.0.1:8081", "origin `address`")
	fs.StringVar(&s.EdgeListen, "edge-listen", "127.0.0.1:8082", "edge public `address`")
	fs.StringVar(&s.EdgeAdminListen, "edge-admin-listen", "127.0.0.1:9082", "edge admin `address` (metrics, purge)")
	fs.BoolVar(&s.Demo, "demo", true, "seed demo content on first start")
	fs.IntVar(&s.DemoSongs, "demo-songs", 4, "how many demo songs to synthesise and upload (1 to 4)")
	fs.DurationVar(&s.DemoLength, "demo-length", 30*time.Second, "length of each demo song")
	fs.StringVar(&s.LogLevel, "log-level", "warn", "log `level` of the daemons: debug, info, warn or error")
	fs.DurationVar(&s.ReadyTimeout, "ready-timeout", 30*time.Second, "how long to wait for every daemon to be ready")
	fs.StringVar(&s.FFmpeg, "ffmpeg", "ffmpeg", "ffmpeg `binary`")
	fs.StringVar(&s.FFprobe, "ffprobe", "ffprobe", "ffprobe `binary`")
	fs.IntVar(&s.PackagerParallel, "demo-concurrency", 2, "ffmpeg encodes at once per packaging job (catalogd -encodes)")
	fs.IntVar(&s.Workers, "workers", 2, "catalogd packaging jobs at once")
	fs.DurationVar(&s.TokenTTL, "token-ttl", time.Hour, "lifetime of playback URLs (catalogd -token-ttl; superseded media is deleted after it)")
	fs.DurationVar(&s.GCDelay, "gc-delay", time.Minute, "extra wait past -token-ttl before superseded media is deleted (catalogd -gc-delay)")
	fs.Var(&s.EdgeCacheBytes, "edge-cache-bytes", "edge cache budget, e.g. 4MiB (edge -cache-bytes; default: the edge's)")
	fs.Var(&s.EdgeSliceBytes, "edge-slice-bytes", "edge media slice size, e.g. 64KiB (edge -slice-bytes; default: the edge's)")
	fs.BoolVar(&s.EdgeHeapSlices, "edge-heap-slices", false, "keep the edge's media slices on the Go heap, not in a memfd slab (edge -heap-slices)")
	fs.IntVar(&s.Regions, "regions", 1, fmt.Sprintf("regions to run on loopback, 1 to %d: each with its own blob folder, origin (falling back to the first region's) and edge; catalogd gets a generated regions file (data/regions.yaml) and replicates between them", MaxRegions))
	if err := config.Load(fs, args, getenv, "dev"); err != nil {
		return Settings{}, err
	}
	if s.Regions < 1 || s.Regions > MaxRegions {
		return Settings{}, fmt.Errorf("dev: -regions %d: want 1 to %d", s.Regions, MaxRegions)
	}
	if s.DemoSongs < 1 || s.DemoSongs > len(demoTracks()) {
		return Settings{}, fmt.Errorf("dev: -demo-songs %d: want 1 to %d", s.DemoSongs, len(demoTracks()))
	}
	// Every daemon would refuse a bad level, but only once the data folder,
	// the keys and the daemons before it exist.
	if _, err := obs.NewLogger(io.Discard, s.LogLevel); err != nil {
		return Settings{}, fmt.Errorf("dev: %w", err)
	}
	return s, nil
}

// resolveAddrs checks that every daemon's address can be listened on now
// (each is bound and released at once) and replaces ports given as 0 with
// free ones, so the daemons and the URLs between them agree.
func resolveAddrs(s *Settings) error {
	for _, a := range []struct {
		name string
		addr *string
		flag string
	}{{"catalogd", &s.CatalogdListen, "-catalogd-listen"}, {"origin", &s.OriginListen, "-origin-listen"},
		{"edge", &s.EdgeListen, "-edge-listen"}, {"edge admin", &s.EdgeAdminListen, "-edge-admin-listen"}} {
		resolved, err := resolveAddr(*a.addr)
		if err != nil {
			return fmt.Errorf("dev: %s cannot listen on %s: %w (is another riff running? pick another address with %s)", a.name, *a.addr, err, a.flag)
		}
		*a.addr = resolved
	}
	return nil
}
