package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"riff/dev"
	"riff/internal/testrun"
)

// node returns the node binary and checks that `npm ci` has been run
// here, failing with what to do otherwise: the player's checks are part
// of `make test`, which installs both.
func node(t *testing.T, pkgs ...string) string {
	t.Helper()
	bin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not on PATH: install Node.js 20+ (Debian: apt-get install nodejs npm), then run `npm ci` in catalogd/web (make test does both)")
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join("node_modules", p, "package.json")); err != nil {
			t.Fatalf("catalogd/web/node_modules/%s is missing: run `npm ci` in catalogd/web (make test does)", p)
		}
	}
	return bin
}

// TestBundleUpToDate fails when the committed dist/ is not what src/
// builds: edit src/, then run `make web` and commit dist/.
func TestBundleUpToDate(t *testing.T) {
	cmd := exec.Command(node(t, "esbuild", "hls.js"), "build.mjs", "--check")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node build.mjs --check: %v\n%s", err, out)
	}
}

// artifacts is where screenshots go: $RIFF_TEST_ARTIFACTS/web-e2e, or
// testout/web-e2e at the top of the repository (gitignored).
func artifacts(t *testing.T) string {
	dir := os.Getenv("RIFF_TEST_ARTIFACTS")
	if dir == "" {
		root, err := filepath.Abs(filepath.Join("..", ".."))
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(root, "testout")
	}
	dir = filepath.Join(dir, "web-e2e")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEndToEnd runs e2e/e2e.mjs in headless Chromium against a real
// `riff dev` (catalogd, origin and edge on loopback ports, a temp data
// folder, one synthesised demo song). See e2e/e2e.mjs for the flows.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("headless browser test; runs without -short (make test)")
	}
	nodeBin := node(t, "playwright-core", "esbuild", "hls.js")
	chromium := chromiumPath(t)
	testrun.RequireFFmpeg(t)
	tmp := t.TempDir()

	// The artist's upload and its replacement: generated 8 s stereo FLACs.
	flacs := make([]string, 2)
	for i, hz := range []string{"330", "440"} {
		flacs[i] = filepath.Join(tmp, "upload-"+hz+".flac")
		testrun.FFmpeg(t, "-hide_banner", "-loglevel", "error", "-f", "lavfi",
			"-i", "sine=frequency="+hz+":sample_rate=44100:duration=8", "-ac", "2", "-c:a", "flac", flacs[i])
	}

	// The album cover the artist sets: an 800×600 PNG (shown as a square
	// crop of it).
	coverPNG := filepath.Join(tmp, "cover.png")
	testrun.FFmpeg(t, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=800x600", "-frames:v", "1", coverPNG)

	d := startDev(t, filepath.Join(tmp, "data"), "-demo-songs", "1", "-demo-length", "12s")
	demoSong := demoSongTitle(t, d.api, d.stdout.String())

	out := artifacts(t)
	runCtx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	defer stop()
	cmd := exec.CommandContext(runCtx, nodeBin, filepath.Join("e2e", "e2e.mjs"))
	cmd.Env = append(os.Environ(), "RIFF_URL="+d.api, "RIFF_FLAC="+flacs[0], "RIFF_FLAC2="+flacs[1], "RIFF_OUT="+out, "RIFF_DEMO_SONG="+demoSong, "RIFF_CHROMIUM="+chromium, "RIFF_COVER="+coverPNG)
	var log testrun.LockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	err := cmd.Run()
	t.Logf("e2e.mjs (screenshots in %s):\n%s", out, log.String())
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			t.Fatalf("the web player's end-to-end run failed (exit %d); riff dev stderr:\n%s", exit.ExitCode(), tail(d.stderr.String(), 4000))
		}
		t.Fatalf("running e2e.mjs: %v", err)
	}
}

// chromiumPath returns Debian's Chromium, or $RIFF_CHROMIUM.
func chromiumPath(t *testing.T) string {
	t.Helper()
	chromium := os.Getenv("RIFF_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("no Chromium at %s: install Debian's chromium (apt-get install chromium; make test does) or set RIFF_CHROMIUM", chromium)
	}
	return chromium
}

// devServer is a running `riff dev` and what its banner tells.
type devServer struct {
	api, edgeAdmin  string // base URLs
	email, password string // the demo listener
	firstSong       int64  // the demo song the banner names
	stdout, stderr  *testrun.LockedBuffer
}

// startDev runs `riff dev` on free loopback ports with its data under
// data and the extra args, waits for its banner, and stops it at cleanup.
func startDev(t *testing.T, data string, args ...string) *devServer {
	t.Helper()
	testrun.RequireFFmpeg(t)
	api := testrun.FreeAddr(t)
	args = append([]string{"-data", data, "-catalogd-listen", api, "-origin-listen", testrun.FreeAddr(t),
		"-edge-listen", testrun.FreeAddr(t), "-edge-admin-listen", testrun.FreeAddr(t), "-ready-timeout", "60s"}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	d := &devServer{api: "http://" + api, stdout: &testrun.LockedBuffer{}, stderr: &testrun.LockedBuffer{}}
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx, args, func(string) string { return "" }, d.stdout, d.stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("riff dev: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("riff dev did not stop within 30s")
		}
	})
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(d.stdout.String(), "Riff is running") {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("riff dev stopped early: %v\nstdout:\n%s\nstderr:\n%s", err, d.stdout, d.stderr)
		case <-deadline:
			t.Fatalf("riff dev not up in time\nstdout:\n%s\nstderr:\n%s", d.stdout, d.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	banner := d.stdout.String()
	if m := regexp.MustCompile(`\(admin (http://\S+)\)`).FindStringSubmatch(banner); m != nil {
		d.edgeAdmin = m[1]
	}
	if m := regexp.MustCompile(`Demo listener: (\S+) / (\S+)`).FindStringSubmatch(banner); m != nil {
		d.email, d.password = m[1], m[2]
	}
	if m := regexp.MustCompile(`/songs/(\d+)`).FindStringSubmatch(banner); m != nil {
		d.firstSong, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if d.edgeAdmin == "" || d.email == "" || d.firstSong == 0 {
		t.Fatalf("riff dev's banner lacks the edge admin URL, the demo listener or a demo song:\n%s", banner)
	}
	return d
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// demoSongTitle finds the title of the demo song riff dev's banner points
// at (…/songs/ID), so the browser searches for whatever the demo is.
func demoSongTitle(t *testing.T, api, banner string) string {
	t.Helper()
	m := regexp.MustCompile(`/songs/(\d+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("riff dev's banner names no demo song:\n%s", banner)
	}
	res, err := http.Get(api + "/songs/" + m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var song struct {
		Title string `json:"title"`
	}
	if err := json.NewDecoder(res.Body).Decode(&song); err != nil || res.StatusCode != http.StatusOK || song.Title == "" {
		t.Fatalf("GET /songs/%s: status %d, %v", m[1], res.StatusCode, err)
	}
	return song.Title
}
