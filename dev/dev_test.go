package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"riff/internal/testrun"
)

// startDev runs riff dev in the background and returns once the banner is
// printed, with a stop function that waits for Run to return.
func startDev(t *testing.T, data string) (api string, out *testrun.LockedBuffer, stop func() error) {
	t.Helper()
	api = testrun.FreeAddr(t)
	out, stop = runDev(t, "-data", data, "-catalogd-listen", api, "-origin-listen", testrun.FreeAddr(t),
		"-edge-listen", testrun.FreeAddr(t), "-edge-admin-listen", testrun.FreeAddr(t),
		"-demo-songs", "1", "-demo-length", "4s", "-ready-timeout", "60s")
	return "http://" + api, out, stop
}

// runDev runs riff dev with args until its banner is printed and returns
// its stdout and an idempotent stop function that waits for Run to return
// (also called at cleanup).
func runDev(t *testing.T, args ...string) (out *testrun.LockedBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &testrun.LockedBuffer{}, &testrun.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, args, func(string) string { return "" }, out, errOut) }()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(out.String(), "Riff is running") {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("riff dev stopped early: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
		case <-deadline:
			cancel()
			t.Fatalf("riff dev not up in time\nstdout:\n%s\nstderr:\n%s", out, errOut)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop = testrun.Stopper(t, cancel, done, 30*time.Second)
	return out, stop
}

func postJSON(t *testing.T, url, body string) map[string]any {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil || res.StatusCode != 200 {
		t.Fatalf("POST %s = %d, %v", url, res.StatusCode, err)
	}
	return m
}

func getJSON(t *testing.T, url, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", url, res.StatusCode, b)
	}
	return m
}

// TestDevPlaysDemoSong is the newcomer's first minute: riff dev seeds a
// song, the demo account logs in, gets signed URLs, and ffmpeg plays the
// HLS and DASH streams through the edge. A restart reuses the data.
func TestDevPlaysDemoSong(t *testing.T) {
	testrun.RequireFFmpeg(t)
	data := t.TempDir()
	api, out, stop := startDev(t, data)

	if !strings.Contains(out.String(), "1/1 \"A Major Sunrise\" ready") {
		t.Errorf("seeding progress missing:\n%s", out)
	}
	login := postJSON(t, api+"/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, demoEmail, demoPassword))
	token, _ := login["access_token"].(string)
	song := getJSON(t, api+"/songs/1", token)
	if song["status"] != "ready" {
		t.Fatalf("demo song = %v, want ready", song)
	}
	for _, field := range []string{"hls_url", "dash_url", "stream_url"} {
		u, _ := song[field].(string)
		if !strings.Contains(u, "/t/") {
			t.Fatalf("%s = %q, want a signed edge URL", field, u)
		}
		cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", u, "-f", "null", "-")
		if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
			t.Errorf("ffmpeg could not play %s: %v %s", field, err, b)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("riff dev: %v", err)
	}

	// Second start: no reseeding, the same song plays.
	_, out, stop = startDev(t, data)
	defer stop()
	if strings.Contains(out.String(), "seeding") {
		t.Errorf("restart seeded again:\n%s", out)
	}
}

func TestDevHelpAndBadFlags(t *testing.T) {
	var errOut bytes.Buffer
	err := Run(context.Background(), []string{"--help"}, func(string) string { return "" }, io.Discard, &errOut)
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut.String(), "-catalogd-listen") {
		t.Errorf("--help = %v, %q", err, errOut.String())
	}
	err = Run(context.Background(), []string{"-demo-songs", "9"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-demo-songs 9") {
		t.Errorf("-demo-songs 9 = %v, want an error naming it", err)
	}
}

func TestDevRefusesBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	args := []string{"-data", t.TempDir(), "-demo=false", "-catalogd-listen", ln.Addr().String(),
		"-origin-listen", testrun.FreeAddr(t), "-edge-listen", testrun.FreeAddr(t), "-edge-admin-listen", testrun.FreeAddr(t)}
	err = Run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "catalogd") {
		t.Errorf("Run with catalogd's port taken = %v, want an error naming catalogd", err)
	}
}

// TestDevPassesEdgeCacheFlags checks that -edge-slice-bytes reaches the
// edge: a slice smaller than the edge allows stops riff dev with the
// edge's own error.
func TestDevPassesEdgeCacheFlags(t *testing.T) {
	args := []string{"-data", t.TempDir(), "-demo=false", "-catalogd-listen", testrun.FreeAddr(t), "-origin-listen", testrun.FreeAddr(t),
		"-edge-listen", testrun.FreeAddr(t), "-edge-admin-listen", testrun.FreeAddr(t), "-edge-cache-bytes", "2MiB", "-edge-slice-bytes", "1KiB", "-edge-heap-slices"}
	err := Run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "edge") || !strings.Contains(err.Error(), "-slice-bytes 1KiB") {
		t.Errorf("Run with -edge-slice-bytes 1KiB = %v, want the edge's refusal", err)
	}
}
