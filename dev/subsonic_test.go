package dev

import (
	"bytes"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"riff/internal/testrun"
)

// subsonicClientDir holds the Subsonic client test: client.mjs, its npm
// dependencies (package-lock.json; `make test` runs `npm ci` there) and
// the OpenSubsonic API description it validates answers against.
const subsonicClientDir = "testdata/subsonic"

// TestSubsonicClient is issue 19's acceptance test: a real Subsonic
// client library from npm (subsonic-api), driven by node, against `riff
// dev`: it logs in with an API key and with token + salt on an app
// password, browses, searches, makes and edits a playlist and sees it in
// Riff's API, stars a song and finds it liked, scrobbles and finds the
// play counted, and follows stream and hls.m3u8 to the edge, whose media
// ffmpeg decodes here. Every answer is validated against the OpenSubsonic
// schema, in JSON and in XML (client.mjs).
func TestSubsonicClient(t *testing.T) {
	testrun.RequireFFmpeg(t)
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not on PATH: install Node.js 20+ (Debian: apt-get install nodejs npm), then run `npm ci` in dev/testdata/subsonic (make test does both)")
	}
	for _, p := range []string{"subsonic-api", "ajv", "fast-xml-parser"} {
		if _, err := os.Stat(filepath.Join(subsonicClientDir, "node_modules", p, "package.json")); err != nil {
			t.Fatalf("dev/%s/node_modules/%s is missing: run `npm ci` in dev/%s (make test does)", subsonicClientDir, p, subsonicClientDir)
		}
	}
	base, edge, _ := startDevArgs(t, "-data", t.TempDir(), "-catalogd-listen", "127.0.0.1:0", "-origin-listen", "127.0.0.1:0",
		"-edge-listen", "127.0.0.1:0", "-edge-admin-listen", "127.0.0.1:0", "-ready-timeout", "120s")

	// The demo listener (premium) makes an API key and an app password in
	// Riff's API, as the web player's profile does.
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	api{t: t, base: base}.json("POST", "/auth/login", map[string]string{"email": demoEmail, "password": demoPassword}, http.StatusOK, &tr)
	listener := api{t: t, base: base, token: tr.AccessToken}
	var key, pw struct{ Key, Password, Username string }
	listener.json("POST", "/users/me/subsonic/api-keys", map[string]string{"name": "subsonic-api test"}, http.StatusCreated, &key)
	listener.json("POST", "/users/me/subsonic/app-passwords", map[string]string{"name": "subsonic-api test"}, http.StatusCreated, &pw)

	cmd := exec.Command(nodeBin, "client.mjs")
	cmd.Dir = subsonicClientDir
	cmd.Env = append(os.Environ(), "RIFF_API="+base, "RIFF_TOKEN="+tr.AccessToken, "RIFF_APIKEY="+key.Key,
		"RIFF_USER="+pw.Username, "RIFF_APP_PASSWORD="+pw.Password)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\n%s\n%s", err, errOut.String(), out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res struct {
		URLs     map[string]string `json:"urls"`
		Duration float64           `json:"duration"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("client.mjs answered %q: %v", out.String(), err)
	}
	// stream (Ogg, and capped at 64 kbps), stream format=aac and the HLS
	// master all play through the edge, as long as the song.
	for _, name := range []string{"stream", "stream64", "aac", "hls"} {
		u := res.URLs[name]
		if !strings.HasPrefix(u, edge+"/t/") {
			t.Errorf("%s: %q is not an edge URL", name, u)
			continue
		}
		d, _ := decode(t, u)
		want := time.Duration(res.Duration * float64(time.Second))
		if diff := d - want; math.Abs(float64(diff)) > float64(time.Second) {
			t.Errorf("%s: decoded %s, want the song's %s ± 1s", name, d, want)
		}
	}
}
