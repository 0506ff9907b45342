package dev

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"riff/catalogd"
	"riff/catalogd/store"
	"riff/catalogd/store/storetest"
	"riff/edge"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/playtoken"
	"riff/internal/testrun"
	"riff/keygen"
	"riff/origin"
)

// runDaemon runs a daemon's Run with args until the test ends, and waits
// until ready answers 200.
func runDaemon(t *testing.T, name string, run func(context.Context, []string, func(string) string, io.Writer, io.Writer) error, ready string, args ...string) *testrun.LockedBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testrun.LockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(string) string { return "" }, io.Discard, logs) }()
	stop := testrun.Stopper(t, cancel, done, 30*time.Second)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	if err := waitReady(context.Background(), ready, time.Minute, nil); err != nil {
		t.Fatalf("%s not ready: %v\n%s", name, err, logs)
	}
	return logs
}

// region is one region of the test: a blob folder, an origin and an edge.
type testRegion struct {
	name, blobDir         string
	origin, edge, edgeAdm string // base URLs
}

// breakStore makes the region's blob folder unusable for published keys
// (artists/ becomes a file: every read and write under it fails with
// ENOTDIR, not "not found"), as a store that is down; it returns the
// repair.
func (r testRegion) breakStore(t *testing.T) (repair func()) {
	t.Helper()
	dir := filepath.Join(r.blobDir, "artists")
	away := dir + ".away"
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, away); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dir, []byte("down"), 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(away); err == nil {
			if err := os.Rename(away, dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// metric returns the value of the line of url's /metrics that starts
// with name (labels included), -1 when missing.
func metric(t *testing.T, url, name string) float64 {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

func fetchURL(t *testing.T, url string) (int, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func waitUntil(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// objectsUnder returns the keys and bodies of the objects under prefix in
// the blob folder dir.
func objectsUnder(t *testing.T, dir, prefix string) map[string][]byte {
	t.Helper()
	s, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string][]byte{}
	for info, err := range s.List(context.Background(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		rc, _, err := s.Get(context.Background(), info.Key, nil)
		if errors.Is(err, blob.ErrNotFound) {
			continue // deleted (GC, replication) between List and Get
		}
		if err != nil {
			t.Fatal(err)
		}
		out[info.Key], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

type songAnswer struct {
	StreamURL    string `json:"stream_url"`
	HLSURL       string `json:"hls_url"`
	FallbackURLs *struct {
		Region    string `json:"region"`
		StreamURL string `json:"stream_url"`
	} `json:"fallback_urls"`
}

// TestRegions runs two regions on loopback, each with its own blob
// folder, origin and edge, and one catalogd with a regions file (home a,
// a listener in b's country), on SQLite and on PostgreSQL:
//
//   - a version published while b's store is down plays from a (b's
//     listener gets a's URLs, no 404), and the replication backlog and
//     lag of b grow;
//   - b's store back, the version is replicated byte for byte, b's
//     listener gets b's URLs with a's as fallback_urls, and one token
//     plays in both regions;
//   - b's store down again: b's origin falls back to a's and playback
//     through b's edge stays byte-exact;
//   - a takedown removes the objects from both stores and both regions'
//     edges get the purge.
func TestRegions(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) { testRegions(t, dialect) })
	}
}

func testRegions(t *testing.T, dialect string) {
	dir := t.TempDir()
	db := "file:" + filepath.Join(dir, "riff.db")
	if dialect == "postgres" {
		db = storetest.PostgresDSN(t)
	}
	keys := filepath.Join(dir, "keys")
	if err := keygen.Run(context.Background(), []string{"-dir", keys}, func(string) string { return "" }, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	jwks := filepath.Join(keys, playtoken.JWKSFile)
	regs := []*testRegion{{name: "a"}, {name: "b"}}
	for _, r := range regs {
		r.blobDir = filepath.Join(dir, "blob-"+r.name)
		if err := os.MkdirAll(r.blobDir, 0o755); err != nil {
			t.Fatal(err)
		}
		r.origin = "http://" + testrun.FreeAddr(t)
		r.edge = "http://" + testrun.FreeAddr(t)
		r.edgeAdm = "http://" + testrun.FreeAddr(t)
	}
	a, b := regs[0], regs[1]
	// b's origin falls back to a's (a is home: it has everything first).
	for _, r := range regs {
		args := []string{"-listen", strings.TrimPrefix(r.origin, "http://"), "-blob", r.blobDir, "-log-level", "warn"}
		if r == b {
			args = append(args, "-fallback", a.origin, "-fallback-timeout", "5s")
		}
		runDaemon(t, "origin "+r.name, origin.Run, r.origin+"/healthz", args...)
		runDaemon(t, "edge "+r.name, edge.Run, r.edgeAdm+"/readyz", "-listen", strings.TrimPrefix(r.edge, "http://"),
			"-admin-listen", strings.TrimPrefix(r.edgeAdm, "http://"), "-origin", r.origin, "-keys", jwks,
			"-negative-ttl", "0", "-log-level", "warn")
	}
	regionsFile := filepath.Join(dir, "regions.yaml")
	yaml := fmt.Sprintf(`home: a
regions:
  - name: a
    edges: [%s]
    purge: [%s]
    blob: %s
    countries: [SE]
    fallback: [b]
  - name: b
    edges: [%s]
    purge: [%s]
    blob: %s
    countries: [US]
    fallback: [a]
`, a.edge, a.edgeAdm, a.blobDir, b.edge, b.edgeAdm, b.blobDir)
	if err := os.WriteFile(regionsFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	apiAddr := testrun.FreeAddr(t)
	api := "http://" + apiAddr
	// b's store is down from the start: the first replication fails.
	repairB := b.breakStore(t)
	runDaemon(t, "catalogd", catalogd.Run, api+"/healthz", "-listen", apiAddr, "-db", db, "-keys", keys,
		"-regions", regionsFile, "-region-header", "X-Riff-Region", "-trusted-proxies", "10.0.0.0/8",
		"-workers", "1", "-gc-delay", "0", "-token-ttl", "1h", "-argon2-memory", "64KiB", "-argon2-time", "1", "-log-level", "warn")

	// The catalog: a song whose version 1 an artist published in a (the
	// packager's output written to a's store, then published in SQL: what
	// ingest.Worker does).
	ctx := context.Background()
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	owner, err := st.CreateUser(ctx, store.NewUser{Email: "label@example.com", PasswordHash: "!", DisplayName: "Label"})
	if err != nil {
		t.Fatal(err)
	}
	artist, err := st.CreateArtist(ctx, owner.ID, store.NewArtist{Name: "Region Band"})
	if err != nil {
		t.Fatal(err)
	}
	album, err := st.CreateAlbum(ctx, store.NewAlbum{ArtistID: artist.ID, Title: "Two Regions", Type: store.AlbumTypeAlbum})
	if err != nil {
		t.Fatal(err)
	}
	song, err := st.CreateSong(ctx, store.NewSong{AlbumID: album.ID, Title: "Replicated", Genre: "rock"})
	if err != nil {
		t.Fatal(err)
	}
	prefix := blobkey.VersionFolder(artist.ID, album.ID, song.ID, 1)
	homeStore, err := blob.NewFS(a.blobDir)
	if err != nil {
		t.Fatal(err)
	}
	defer homeStore.Close()
	want := map[string][]byte{}
	var rs []store.Rendition
	for _, kbps := range []int{64, 128} {
		key := prefix + blobkey.Rendition{Format: blobkey.FormatOgg, Kbps: kbps}.Media()
		body := make([]byte, 300_000*kbps/64+17)
		rand.Read(body)
		if _, err := homeStore.Put(ctx, key, bytes.NewReader(body), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		want[key] = body
		rs = append(rs, store.Rendition{Format: blobkey.FormatOgg, BitrateKbps: kbps, BlobKey: key, SizeBytes: int64(len(body))})
	}
	if err := st.PublishVersion(ctx, song.ID, 1, rs); err != nil {
		t.Fatal(err)
	}
	ogg128 := prefix + "ogg_128.ogg"

	// A listener whose profile puts them in b (US).
	listener := postJSON201(t, api+"/auth/register", `{"email":"us@example.com","password":"listener-pw-1","display_name":"US","country":"US"}`)
	token, _ := listener["access_token"].(string)
	getSong := func(hdr ...string) songAnswer {
		t.Helper()
		var s songAnswer
		getJSONInto(t, api+"/songs/"+strconv.FormatInt(song.ID, 10), token, &s, hdr...)
		return s
	}

	// 1. b's store is down: b's listener is served from a, with no
	// fallback (no other region has it), and playback works.
	s := getSong()
	if !strings.HasPrefix(s.StreamURL, a.edge+"/t/") || s.FallbackURLs != nil {
		t.Fatalf("before replication: stream_url %s, fallback %+v; want a's edge (%s) and no fallback", s.StreamURL, s.FallbackURLs, a.edge)
	}
	if code, body := fetchURL(t, s.StreamURL); code != 200 || !bytes.Equal(body, want[ogg128]) {
		t.Fatalf("playing from a before replication = %d, %d bytes", code, len(body))
	}
	waitUntil(t, 30*time.Second, func() bool {
		return metric(t, api, `riff_replication_failures_total{region="b",kind="target"}`) >= 1
	}, "b's failed replication to be counted")
	if got := metric(t, api, `riff_replication_pending{region="b"}`); got != 1 {
		t.Errorf("riff_replication_pending{b} = %v, want 1", got)
	}
	waitUntil(t, 30*time.Second, func() bool { return metric(t, api, `riff_replication_lag_seconds{region="b"}`) > 0 }, "b's lag to grow")

	// 2. b's store back: the version is copied, byte for byte; b's
	// listener now plays from b, with a as fallback, on one token.
	repairB()
	waitUntil(t, 60*time.Second, func() bool { return strings.HasPrefix(getSong().StreamURL, b.edge+"/t/") }, "b's listener to get b's URLs")
	if got := objectsUnder(t, b.blobDir, prefix); !mapsEqual(got, want) {
		t.Errorf("b's store holds %d objects under %s, not a byte-identical copy of a's %d", len(got), prefix, len(want))
	}
	s = getSong()
	if s.FallbackURLs == nil || s.FallbackURLs.Region != "a" || !strings.HasPrefix(s.FallbackURLs.StreamURL, a.edge+"/t/") {
		t.Fatalf("fallback_urls = %+v, want a's", s.FallbackURLs)
	}
	if tok := func(u string) string { return strings.Split(strings.TrimPrefix(u, "http://"), "/")[2] }; tok(s.StreamURL) != tok(s.FallbackURLs.StreamURL) {
		t.Errorf("the fallback URL carries another token")
	}
	for _, u := range []string{s.StreamURL, s.FallbackURLs.StreamURL} {
		if code, body := fetchURL(t, u); code != 200 || !bytes.Equal(body, want[ogg128]) {
			t.Errorf("GET %s = %d, %d bytes; want the object (one token, every region)", u, code, len(body))
		}
	}
	waitUntil(t, 30*time.Second, func() bool {
		return metric(t, api, `riff_replication_pending{region="b"}`) == 0 && metric(t, api, `riff_replication_lag_seconds{region="b"}`) == 0
	}, "b's backlog and lag to return to 0")
	// A trusted load balancer's header wins over the profile; an
	// untrusted peer's (this test's, 127.0.0.1) is ignored.
	if s := getSong("X-Riff-Region", "a"); !strings.HasPrefix(s.StreamURL, b.edge+"/t/") {
		t.Errorf("an untrusted X-Riff-Region moved the listener to %s", s.StreamURL)
	}

	// 3. b's store down again: b's edge misses, b's origin falls back to
	// a's, and the listener still gets the exact bytes (ogg_64: not in
	// b's edge cache yet).
	repairB = b.breakStore(t)
	req, _ := http.NewRequest("GET", api+"/songs/"+strconv.FormatInt(song.ID, 10)+"/stream?quality=64", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusFound || !strings.HasPrefix(loc, b.edge+"/t/") {
		t.Fatalf("GET /songs/{id}/stream = %d %s, want a redirect to b's edge", res.StatusCode, loc)
	}
	if code, body := fetchURL(t, loc); code != 200 || !bytes.Equal(body, want[prefix+"ogg_64.ogg"]) {
		t.Fatalf("playing through b with b's store down = %d, %d bytes; want the exact object", code, len(body))
	}
	if got := metric(t, b.origin, `riff_origin_fallback_total{component="origin",result="served"}`); got < 1 {
		t.Errorf("b's origin fallback count = %v, want ≥ 1", got)
	}
	repairB()

	// 4. A takedown: the objects go from both stores (GC at home, then
	// replicated), and both regions' edges get the purges.
	purgedA := metric(t, api, fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, a.edgeAdm))
	purgedB := metric(t, api, fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, b.edgeAdm))
	if err := st.TakeDown(ctx, song.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, func() bool {
		return len(objectsUnder(t, a.blobDir, prefix)) == 0 && len(objectsUnder(t, b.blobDir, prefix)) == 0
	}, "the taken-down version to leave both stores")
	waitUntil(t, 30*time.Second, func() bool {
		return metric(t, api, fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, a.edgeAdm)) > purgedA &&
			metric(t, api, fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, b.edgeAdm)) > purgedB
	}, "both regions' edges to get the purge")
	waitUntil(t, 30*time.Second, func() bool {
		rs, err := st.VersionRegions(ctx, song.ID, 1)
		return err == nil && len(rs) == 0
	}, "b to be recorded as no longer holding the version")
	// What b's edge had cached is gone with the purge.
	waitUntil(t, 30*time.Second, func() bool {
		code, _ := fetchURL(t, s.StreamURL)
		return code == http.StatusNotFound
	}, "b's edge to stop serving the taken-down song")
}

func mapsEqual(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func postJSON201(t *testing.T, url, body string) map[string]any {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("POST %s = %d %s", url, res.StatusCode, b)
	}
	return m
}

func getJSONInto(t *testing.T, url, token string, out any, hdr ...string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(b, out); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET %s = %d %s", url, res.StatusCode, b)
	}
}
