// Package dev is `riff dev`: the whole of Riff in one process on loopback,
// for a newcomer's first minute and for end-to-end tests.
//
// It keeps everything under one data folder (default ./data): a signing
// key made with `riff keygen` (data/keys), the SQLite catalog
// (data/riff.db) and the blob folder (data/blob), unless -blob names
// another store (an S3 bucket: then it runs as one region would). It runs
// catalogd, origin and edge through their own Run functions, exactly as
// the separate daemons would run (catalogd packages uploads into the blob
// store the origin serves and sends purges to the edge's admin listener),
// waits until each answers /readyz, and prints where to listen. dev may import
// every daemon; no daemon may import dev (only cmd/riff and tests do).
// run.go holds Run and its flags; dev.go starts the daemons.
//
// On first start it seeds demo content through the real upload path: it
// registers the demo artists' owners, creates their artists and albums,
// uploads songs synthesised with ffmpeg (POST /songs), and waits for
// catalogd's job workers to package and publish them; then it registers
// the demo listener.
package dev

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"riff/catalogd"
	"riff/edge"
	"riff/internal/playtoken"
	"riff/keygen"
	"riff/origin"
)

func start(ctx context.Context, s Settings, getenv func(string) string, stdout, stderr io.Writer) error {
	keysDir := filepath.Join(s.Data, "keys")
	blobURL := s.Blob
	if blobURL == "" {
		blobURL = filepath.Join(s.Data, "blob")
	}
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
	type daemon struct {
		name  string
		run   func(context.Context, []string, func(string) string, io.Writer, io.Writer) error
		args  []string
		ready string
	}
	daemons := []daemon{
		{"origin", origin.Run, []string{"-listen", s.OriginListen, "-blob", blobURL, "-log-level", s.LogLevel},
			"http://" + s.OriginListen + "/readyz"},
		{"edge", edge.Run, edgeArgs, "http://" + s.EdgeAdminListen + "/readyz"},
	}
	catalogdArgs := []string{"-listen", s.CatalogdListen, "-db", dbDSN, "-keys", keysDir,
		"-edge-url", edgeURL, "-log-level", s.LogLevel, "-token-ttl", s.TokenTTL.String(), "-gc-delay", s.GCDelay.String(),
		"-workers", fmt.Sprint(s.Workers), "-encodes", fmt.Sprint(s.PackagerParallel), "-ffmpeg", s.FFmpeg, "-ffprobe", s.FFprobe}
	var regions []devRegion
	if s.Regions > 1 {
		// Every further region: its own blob folder, an origin that
		// falls back to the home region's, and an edge; catalogd gets a
		// regions file instead of -blob and -purge-edges (regions.go).
		var err error
		if regions, err = planRegions(s, blobURL); err != nil {
			return err
		}
		for _, r := range regions[1:] {
			args := slices.Clone(edgeArgs)
			for i := 0; i+1 < len(args); i++ {
				switch args[i] {
				case "-listen":
					args[i+1] = r.EdgeListen
				case "-admin-listen":
					args[i+1] = r.EdgeAdminListen
				case "-origin":
					args[i+1] = "http://" + r.OriginListen
				}
			}
			daemons = append(daemons,
				daemon{"origin " + r.Name, origin.Run, []string{"-listen", r.OriginListen, "-blob", r.Blob, "-log-level", s.LogLevel,
					"-fallback", "http://" + s.OriginListen}, "http://" + r.OriginListen + "/readyz"},
				daemon{"edge " + r.Name, edge.Run, args, "http://" + r.EdgeAdminListen + "/readyz"})
		}
		file := filepath.Join(s.Data, "regions.yaml")
		if err := writeRegionsFile(file, regions); err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		catalogdArgs = append(catalogdArgs, "-regions", file)
	} else {
		catalogdArgs = append(catalogdArgs, "-blob", blobURL, "-purge-edges", "http://"+s.EdgeAdminListen)
	}
	daemons = append(daemons, daemon{"catalogd", catalogd.Run, catalogdArgs, "http://" + s.CatalogdListen + "/readyz"})

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
	for _, r := range regions {
		fmt.Fprintf(stdout, "  region %-5s edge http://%s  origin http://%s  blob %s  (countries %s)\n",
			r.Name, r.EdgeListen, r.OriginListen, r.Blob, strings.Join(r.Countries, " "))
	}

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
// The timeout's error quotes the last answer (which names the failing
// checks, e.g. {"status":"unavailable","failed":["blob"]}).
func waitReady(ctx context.Context, url string, timeout time.Duration, errc <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "none"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if res, err := client.Do(req); err == nil {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, bytes.TrimSpace(body))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last answer: %s)", url, ctx.Err(), last)
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
