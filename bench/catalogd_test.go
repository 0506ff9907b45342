package bench

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"riff/dev"
	"riff/internal/testrun"
)

// TestListenThroughCatalogd runs listeners against riff dev: they log in
// once, find the demo song with search, and mint a playback URL through
// GET /songs/{id} for every song they start.
func TestListenThroughCatalogd(t *testing.T) {
	testrun.RequireFFmpeg(t)
	api, admin := testrun.FreeAddr(t), testrun.FreeAddr(t)
	args := []string{"-data", t.TempDir(), "-catalogd-listen", api, "-origin-listen", testrun.FreeAddr(t),
		"-edge-listen", testrun.FreeAddr(t), "-edge-admin-listen", admin,
		"-demo-songs", "2", "-demo-length", "4s", "-ready-timeout", "60s"}
	ctx, cancel := context.WithCancel(context.Background())
	out := &testrun.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- dev.Run(ctx, args, func(string) string { return "" }, out, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("riff dev did not stop")
		}
	})
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "Riff is running") {
		select {
		case err := <-done:
			t.Fatalf("riff dev stopped: %v\n%s", err, out)
		case <-deadline:
			t.Fatalf("riff dev not up:\n%s", out)
		case <-time.After(100 * time.Millisecond):
		}
	}

	o := opts("listen")
	o.API, o.Email, o.Password = "http://"+api, "demo@riff.dev", "riff-demo-password"
	o.Queries, o.Songs = []string{"a", "p", "zzz"}, 10
	o.EdgeMetrics = "http://" + admin + "/metrics"
	o.MaxErrorRate = 0
	// Logging in hashes a password (argon2id): slow under -race on a
	// loaded machine, and an answer that only comes late is not an error
	// this test looks for.
	o.Timeout = 30 * time.Second
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Listen == nil || rep.Listen.Songs == 0 {
		t.Fatalf("errors %v, QoE %+v", rep.ErrorsByKind, rep.Listen)
	}
	api1 := rep.Kind("api")
	if api1.Requests < rep.Listen.Songs || rep.Kind("segment").Requests == 0 {
		t.Errorf("api requests %d for %d songs; by kind %+v", api1.Requests, rep.Listen.Songs, rep.ByKind)
	}
	if rep.Origin == nil || rep.HitRatio <= 0 {
		t.Errorf("origin %+v, hit ratio %v", rep.Origin, rep.HitRatio)
	}

	// A wrong password is a setup error, not a measurement.
	o.Password = "wrong"
	if _, err := Execute(context.Background(), o, io.Discard); err == nil || !strings.Contains(err.Error(), "login") {
		t.Errorf("wrong password: %v", err)
	}
}
