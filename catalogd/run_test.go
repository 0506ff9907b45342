package catalogd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/obs"
	"riff/internal/playtoken"
	"riff/internal/testrun"
	"riff/keygen"
)

func noEnv(string) string { return "" }

// startRun runs Run in the background and returns the API and admin
// addresses from its "listening" log line, and a stop function that
// cancels it and returns its error.
func startRun(t *testing.T, args ...string) (addr, admin string, logs *testrun.LockedBuffer, stop func() error) {
	t.Helper()
	args = append([]string{"-blob", t.TempDir()}, args...) // a later -blob wins
	ctx, cancel := context.WithCancel(context.Background())
	logs = &testrun.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, args, noEnv, io.Discard, logs) }()
	deadline := time.Now().Add(time.Minute) // a loaded machine under -race is slow to start
	for addr == "" {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run exited early: %v\n%s", err, logs)
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no listening line:\n%s", logs)
		}
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		for sc.Scan() {
			var rec struct{ Msg, Addr, AdminAddr string }
			var raw map[string]any
			if json.Unmarshal(sc.Bytes(), &raw) == nil && raw["msg"] == "listening" {
				rec.Addr, _ = raw["addr"].(string)
				rec.AdminAddr, _ = raw["admin_addr"].(string)
				addr, admin = rec.Addr, rec.AdminAddr
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop = testrun.Stopper(t, cancel, done, 20*time.Second)
	return addr, admin, logs, stop
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestRunEndToEnd(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := keygen.Run(context.Background(), []string{"-dir", keys, "-kid", "k1"}, noEnv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	db := "file:" + filepath.Join(dir, "db", "riff.db")
	addr, _, logs, stop := startRun(t, "-listen", "127.0.0.1:0", "-db", db, "-keys", keys,
		"-argon2-memory", "64KiB", "-argon2-time", "1", "-edge-url", "http://edge.test:8082")
	base := "http://" + addr
	if code, body := httpGet(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	res, err := http.Post(base+"/auth/register", "application/json",
		strings.NewReader(`{"email":"run@example.com","password":"long enough","display_name":"Run"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 201 {
		t.Fatalf("register = %d", res.StatusCode)
	}
	// The JWKS holds the keygen key (edges verify playback with it) and the access key.
	_, body := httpGet(t, base+"/.well-known/jwks.json")
	ks, err := playtoken.ParseKeySet([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	fileKS, _ := playtoken.LoadKeySet(filepath.Join(keys, playtoken.JWKSFile))
	pub, _ := fileKS.Key("k1")
	if got, ok := ks.Key("k1"); !ok || !got.Equal(pub) || len(ks.KIDs()) != 2 {
		t.Errorf("JWKS kids %v", ks.KIDs())
	}
	if err := stop(); err != nil {
		t.Errorf("Run after cancel = %v", err)
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no shutdown log:\n%s", logs)
	}

	// A restart on the same keys accepts the same access tokens' key: the
	// derived access kid is stable.
	addr2, _, _, stop2 := startRun(t, "-listen", "127.0.0.1:0", "-db", db, "-keys", keys, "-argon2-memory", "64KiB", "-argon2-time", "1")
	_, body2 := httpGet(t, "http://"+addr2+"/.well-known/jwks.json")
	if body2 != body {
		t.Errorf("JWKS changed across restarts:\n%s\n%s", body, body2)
	}
	stop2()
}

func TestRunAdminListenerAndEphemeralKey(t *testing.T) {
	db := "file:" + filepath.Join(t.TempDir(), "riff.db")
	addr, admin, logs, stop := startRun(t, "-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-db", db)
	if admin == "" {
		t.Fatal("no admin address logged")
	}
	if code, _ := httpGet(t, "http://"+admin+"/metrics"); code != 200 {
		t.Errorf("admin /metrics = %d", code)
	}
	if code, _ := httpGet(t, "http://"+addr+"/metrics"); code != 404 {
		t.Errorf("API /metrics with an admin listener = %d, want 404", code)
	}
	if code, _ := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("API /healthz = %d", code)
	}
	if !strings.Contains(logs.String(), "ephemeral signing key") {
		t.Errorf("no warning about the ephemeral key:\n%s", logs)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}

func TestRunErrors(t *testing.T) {
	var errOut bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, noEnv, io.Discard, &errOut); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help = %v", err)
	}
	for _, want := range []string{"-listen", "-db", "-keys", "-edge-url", "-token-ttl", "-argon2-memory", "catalogd seed"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("usage lacks %q", want)
		}
	}
	for _, args := range [][]string{
		{"-keys", filepath.Join(t.TempDir(), "missing")},
		{"-db", "mysql://x"},
		{"-edge-url", "ftp://x", "-db", "file:" + filepath.Join(t.TempDir(), "x.db"), "-blob", t.TempDir()},
		{"-log-level", "loud"},
		{"-argon2-time", "0"},
		{"stray"},
	} {
		if err := Run(context.Background(), args, noEnv, io.Discard, io.Discard); err == nil {
			t.Errorf("Run(%q) succeeded", args)
		}
	}
}

func TestRunSeed(t *testing.T) {
	db := "file:" + filepath.Join(t.TempDir(), "riff.db")
	var out bytes.Buffer
	err := Run(context.Background(), []string{"seed", "-db", db, "-songs", "600", "-quiet"}, noEnv, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "seeded 600 songs") {
		t.Errorf("seed output %q", out.String())
	}
	if err := Run(context.Background(), []string{"seed", "-songs", "0"}, noEnv, io.Discard, io.Discard); err == nil {
		t.Error("seed -songs 0 succeeded")
	}
	// The seeded database serves.
	addr, _, _, stop := startRun(t, "-listen", "127.0.0.1:0", "-db", db)
	code, body := httpGet(t, "http://"+addr+"/search?q=love&type=song")
	if code != 200 || !strings.Contains(body, `"total"`) {
		t.Errorf("search on seeded db = %d %s", code, body)
	}
	stop()
}

// TestParseFlags: parseFlags refuses bad values before anything is opened
// or started, and maps good ones onto the parts' configurations.
func TestParseFlags(t *testing.T) {
	bad := []struct {
		name string
		args []string
		want string
	}{
		{"negative workers", []string{"-workers", "-1"}, "-workers"},
		{"no job attempts", []string{"-job-attempts", "0"}, "-job-attempts"},
		{"zero job lease", []string{"-job-lease", "0s"}, "-job-lease"},
		{"argon2 time", []string{"-argon2-time", "0"}, "argon2"},
		{"argon2 threads", []string{"-argon2-threads", "256"}, "argon2"},
		{"argon2 memory", []string{"-argon2-memory", "1KiB"}, "argon2"},
		{"database scheme", []string{"-db", "mysql://x"}, "-db"},
		{"edge URL scheme", []string{"-edge-url", "ftp://x"}, "edge URL"},
		{"edge URL query", []string{"-edge-url", "http://x/?a=b"}, "edge URL"},
		{"log level", []string{"-log-level", "loud"}, "level"},
		{"unknown flag", []string{"-wrokers", "2"}, "wrokers"},
		{"not a number", []string{"-workers", "two"}, "workers"},
		{"max duration too short", []string{"-max-duration", "0s"}, "-max-duration"},
		{"encode budget", []string{"-encode-budget", "-1s"}, "-encode-budget"},
		{"no uploads per user", []string{"-uploads-per-user", "0"}, "-uploads-per-user"},
		{"no uploads", []string{"-uploads-max", "0"}, "-uploads-max"},
		{"purge lease", []string{"-purge-lease", "1ms"}, "-purge-lease"},
		{"events retention too short", []string{"-events-retention", "72h"}, "-events-retention"},
		{"stray argument", []string{"stray"}, ""},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, noEnv, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseFlags(%q) = %v, want an error naming %q", tc.args, err, tc.want)
			}
		})
	}

	cfg, err := parseFlags([]string{"-workers", "0", "-job-attempts", "5", "-gc-delay", "0", "-token-reuse", "0",
		"-upload-dir", "/spool", "-encodes", "3", "-max-duration", "10m", "-encode-budget", "1s", "-purge-edges", " http://a:9082, ,http://b:9082", "-argon2-memory", "64KiB"},
		func(k string) string {
			if k == "RIFF_CATALOGD_EDGE_URL" {
				return "https://edge.example/"
			}
			return ""
		}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.server
	if s.Workers != 0 || s.JobAttempts != 5 || s.GCDelay != -1 || s.PlaybackReuse != -1 ||
		s.EdgeURL != "https://edge.example/" || cfg.packager.Concurrency != 3 || cfg.uploadDir != "/spool" ||
		cfg.argon2.MemoryKiB != 64 || cfg.packager.MaxDuration != 10*time.Minute || cfg.packager.EncodeBudget != time.Second || !slices.Equal(cfg.purgeEdges, []string{"http://a:9082", "http://b:9082"}) {
		t.Errorf("parseFlags = %+v", cfg)
	}
}

// TestRunRefusesBeforeStarting: a bad flag fails Run before the database
// or the blob folder is created.
func TestRunRefusesBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	db, blobDir := filepath.Join(dir, "riff.db"), filepath.Join(dir, "blob")
	for _, args := range [][]string{{"-workers", "-1"}, {"-job-attempts", "0"}, {"-edge-url", "ftp://x"}} {
		args = append(args, "-db", "file:"+db, "-blob", blobDir, "-listen", "127.0.0.1:0")
		if err := Run(context.Background(), args, noEnv, io.Discard, io.Discard); err == nil {
			t.Errorf("Run(%q) succeeded", args)
		}
		for _, p := range []string{db, blobDir} {
			if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("Run(%q) made %s before refusing (%v)", args, p, err)
			}
		}
	}
}

// TestBacklogGaugesShareOneQuery: a scrape reads riff_jobs_due and
// riff_jobs_oldest_due_seconds from one backlog query; the next scrape
// (past backlogFresh) asks again; a failed query reads as -1.
func TestBacklogGaugesShareOneQuery(t *testing.T) {
	o := obs.New("catalogd", slog.New(slog.DiscardHandler))
	queries := 0
	var fail bool
	exportBacklog(o, func(context.Context) (store.JobBacklog, error) {
		queries++
		if fail {
			return store.JobBacklog{}, errors.New("db down")
		}
		return store.JobBacklog{Due: 3, OldestDue: 90 * time.Second}, nil
	})
	scrape := func() string {
		var b strings.Builder
		o.WriteMetrics(&b)
		return b.String()
	}
	got := scrape()
	if !strings.Contains(got, "riff_jobs_due 3\n") || !strings.Contains(got, "riff_jobs_oldest_due_seconds 90\n") || queries != 1 {
		t.Errorf("first scrape: %d queries, metrics:\n%s", queries, got)
	}
	time.Sleep(backlogFresh)
	fail = true
	if got := scrape(); !strings.Contains(got, "riff_jobs_due -1\n") || !strings.Contains(got, "riff_jobs_oldest_due_seconds -1\n") || queries != 2 {
		t.Errorf("second scrape, database down: %d queries, metrics:\n%s", queries, got)
	}
}
