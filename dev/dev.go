// Package dev is `riff dev`: the whole of Riff in one process on loopback,
// for a newcomer's first minute and for end-to-end tests.
//
// It keeps everything under one data folder (default ./data): a signing
// key made with `riff keygen` (data/keys), the SQLite catalog
// (data/riff.db) and the blob folder (data/blob). It runs catalogd, origin
// and edge through their own Run functions, exactly as the separate
// daemons would run (catalogd packages uploads into the blob folder the
// origin serves and sends purges to the edge's admin listener), waits
// until each answers /readyz, and prints where to listen.
//
// On first start it seeds demo content through the real upload path: it
// registers the demo artists' owners, creates their artists and albums,
// uploads songs synthesised with ffmpeg (POST /songs), and waits for
// catalogd's job workers to package and publish them; then it registers
// the demo listener.
package dev

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"riff/catalogd"
	"riff/edge"
	"riff/internal/config"
	"riff/internal/playtoken"
	"riff/keygen"
	"riff/origin"
)

// Settings are riff dev's flags.
type Settings struct {
	Data             string
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
}

// Run starts catalogd, origin and edge on loopback and blocks until ctx is
// cancelled or one of them fails.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var s Settings
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.Data, "data", "data", "`folder` for the keys, the SQLite catalog and the blob folder")
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
	if err := config.Load(fs, args, getenv, "dev"); err != nil {
		return err
	}
	if s.DemoSongs < 1 || s.DemoSongs > len(demoTracks()) {
		return fmt.Errorf("dev: -demo-songs %d: want 1 to %d", s.DemoSongs, len(demoTracks()))
	}
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
	return start(ctx, s, getenv, stdout, stderr)
}

func start(ctx context.Context, s Settings, getenv func(string) string, stdout, stderr io.Writer) error {
	keysDir := filepath.Join(s.Data, "keys")
	blobDir := filepath.Join(s.Data, "blob")
	dbDSN := "file:" + filepath.Join(s.Data, "riff.db")
	if err := os.MkdirAll(s.Data, 0o755); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	if _, err := os.Stat(filepath.Join(keysDir, playtoken.SigningKeyFile)); errors.Is(err, os.ErrNotExist) {
		if err := keygen.Run(ctx, []string{"-dir", keysDir}, getenv, io.Discard, stderr); err != nil {
			return fmt.Errorf("dev: keygen: %w", err)
		}
	}
	var demo *demoAccount
	if s.Demo {
		var err error
		if demo, err = existingDemo(ctx, s, dbDSN); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
	}

	edgeURL := "http://" + s.EdgeListen
	edgeArgs := []string{"-listen", s.EdgeListen, "-admin-listen", s.EdgeAdminListen,
		"-origin", "http://" + s.OriginListen, "-keys", filepath.Join(keysDir, playtoken.JWKSFile), "-log-level", s.LogLevel}
	if s.EdgeCacheBytes != 0 {
		edgeArgs = append(edgeArgs, "-cache-bytes", s.EdgeCacheBytes.String())
	}
	if s.EdgeSliceBytes != 0 {
		edgeArgs = append(edgeArgs, "-slice-bytes", s.EdgeSliceBytes.String())
	}
	if s.EdgeHeapSlices {
		edgeArgs = append(edgeArgs, "-heap-slices")
	}
	daemons := []struct {
		name  string
		run   func(context.Context, []string, func(string) string, io.Writer, io.Writer) error
		args  []string
		ready string
	}{
		{"origin", origin.Run, []string{"-listen", s.OriginListen, "-blob", blobDir, "-log-level", s.LogLevel},
			"http://" + s.OriginListen + "/readyz"},
		{"edge", edge.Run, edgeArgs, "http://" + s.EdgeAdminListen + "/readyz"},
		{"catalogd", catalogd.Run, []string{"-listen", s.CatalogdListen, "-db", dbDSN, "-keys", keysDir,
			"-edge-url", edgeURL, "-log-level", s.LogLevel, "-blob", blobDir, "-purge-edges", "http://" + s.EdgeAdminListen,
			"-token-ttl", s.TokenTTL.String(), "-gc-delay", s.GCDelay.String(), "-workers", fmt.Sprint(s.Workers),
			"-encodes", fmt.Sprint(s.PackagerParallel), "-ffmpeg", s.FFmpeg, "-ffprobe", s.FFprobe},
			"http://" + s.CatalogdListen + "/readyz"},
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(daemons))
	for _, d := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := d.run(ctx, d.args, getenv, io.Discard, stderr)
			if ctx.Err() == nil {
				if err == nil {
					err = errors.New("stopped")
				}
				errc <- fmt.Errorf("dev: %s: %w", d.name, err)
			}
		}()
	}
	stop := func(err error) error {
		cancel()
		wg.Wait()
		return err
	}

	for _, d := range daemons {
		if err := waitReady(ctx, d.ready, s.ReadyTimeout, errc); err != nil {
			return stop(fmt.Errorf("dev: %s not ready: %w", d.name, err))
		}
	}
	if s.Demo && demo == nil {
		var err error
		if demo, err = seed(ctx, s, "http://"+s.CatalogdListen, dbDSN, stdout); err != nil {
			return stop(fmt.Errorf("dev: seeding demo content (if a first start was interrupted, delete %s to start over): %w", s.Data, err))
		}
	}
	banner(stdout, s, edgeURL, demo)

	select {
	case <-ctx.Done():
		return stop(nil)
	case err := <-errc:
		return stop(err)
	}
}

// resolveAddr checks that addr can be listened on now and returns it with
// a port 0 replaced by a free port (so the daemons and the URLs agree).
func resolveAddr(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer ln.Close()
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		return ln.Addr().String(), nil
	}
	return addr, nil
}

// waitReady polls url until it answers 200, a daemon fails, or timeout.
func waitReady(ctx context.Context, url string, timeout time.Duration, errc <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", url, ctx.Err())
		case err := <-errc:
			return err
		case <-tick.C:
		}
	}
}

func banner(w io.Writer, s Settings, edgeURL string, demo *demoAccount) {
	api := "http://" + s.CatalogdListen
	fmt.Fprintf(w, "\nRiff is running (Ctrl-C stops it):\n")
	fmt.Fprintf(w, "  player    %s/   (the web player: open it in a browser)\n", api)
	fmt.Fprintf(w, "  catalogd  %s   (API; /openapi.json, /metrics, /readyz)\n", api)
	fmt.Fprintf(w, "  origin    http://%s\n", s.OriginListen)
	fmt.Fprintf(w, "  edge      %s   (admin http://%s)\n", edgeURL, s.EdgeAdminListen)
	fmt.Fprintf(w, "  data      %s\n", s.Data)
	if demo == nil {
		return
	}
	token := func(v, email, password string) string {
		return fmt.Sprintf("%s=$(curl -s %s/auth/login -H 'Content-Type: application/json' -d '{\"email\":\"%s\",\"password\":\"%s\"}' | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')",
			v, api, email, password)
	}
	fmt.Fprintf(w, "\nDemo listener: %s / %s (premium)\n", demo.Email, demo.Password)
	fmt.Fprintf(w, "Demo artist:   %s / %s (owns %q, album %d)\n", demo.ArtistEmail, demo.ArtistPassword, demo.ArtistName, demo.FirstAlbumID)
	fmt.Fprintf(w, "\nListen:\n")
	fmt.Fprintf(w, "  %s\n", token("TOKEN", demo.Email, demo.Password))
	fmt.Fprintf(w, "  curl -s '%s/search?q=major'\n", api)
	fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $TOKEN\" %s/songs/%d     # hls_url, dash_url, stream_url\n", api, demo.FirstSongID)
	fmt.Fprintf(w, "  curl -s -o /dev/null -w '%%{redirect_url}\\n' -H \"Authorization: Bearer $TOKEN\" %s/songs/%d/stream   # signed Ogg URL\n", api, demo.FirstSongID)
	fmt.Fprintf(w, "  ffplay \"$(curl -s -H \"Authorization: Bearer $TOKEN\" %s/songs/%d | sed 's/.*\"hls_url\":\"\\([^\"]*\\)\".*/\\1/')\"\n", api, demo.FirstSongID)
	fmt.Fprintf(w, "    (no ffplay? ffmpeg -i \"<hls_url>\" -f wav - | aplay, or -f null - to just decode)\n")
	fmt.Fprintf(w, "\nUpload (as the artist):\n")
	fmt.Fprintf(w, "  %s\n", token("ARTIST", demo.ArtistEmail, demo.ArtistPassword))
	fmt.Fprintf(w, "  ffmpeg -f lavfi -i 'sine=f=523.25:d=30' -c:a flac my-song.flac\n")
	fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $ARTIST\" -F album_id=%d -F title='My Song' -F file=@my-song.flac %s/songs\n", demo.FirstAlbumID, api)
	fmt.Fprintf(w, "  curl -s -H \"Authorization: Bearer $ARTIST\" %s/songs/<id>   # status processing → ready, with progress\n\n", api)
}
