package purge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"riff/catalogd/outbox"
	"riff/catalogd/store"
	"riff/edge"
	"riff/internal/blob"
	"riff/internal/obs"
	"riff/internal/playtoken"
	"riff/internal/testrun"
	"riff/origin"
)

// Test content: two songs of one album, so a purge of one song has a
// neighbour that must stay cached.
const (
	songA = "artists/1/albums/2/songs/3/"
	songB = "artists/1/albums/2/songs/4/"
	objA  = songA + "v1/ogg_128.ogg"
	objB  = songB + "v1/ogg_128.ogg"
)

// newSigner returns catalogd's signing key for a test.
func newSigner(t testing.TB) *playtoken.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return playtoken.NewSigner("catalogd-test", priv, time.Now)
}

// startOrigin serves a blob folder holding objA and objB with a real
// origin on loopback and returns its URL.
func startOrigin(t testing.TB) string {
	t.Helper()
	bs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	body := bytes.Repeat([]byte("riff purge test "), 4096) // 64 KiB
	for _, key := range []string{objA, objB} {
		if _, err := bs.Put(context.Background(), key, bytes.NewReader(body), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	srv := origin.NewServer(obs.New("origin", slog.New(slog.DiscardHandler)), bs, origin.ServerConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// testEdge is a real edge (edge.NewServer) on loopback whose admin
// listener can be taken down and brought back on the same port while the
// edge (and its cache) lives on.
type testEdge struct {
	t      testing.TB
	srv    *edge.Server
	obs    *obs.Obs
	public string // public base URL
	admin  string // admin base URL, what the dispatcher is given
	addr   string // admin host:port
	play   *playtoken.Signer

	mu       sync.Mutex
	adminSrv *fasthttp.Server // nil while down
	purges   []time.Time      // POST /purge requests received
	statuses []int            // and their answers
	bodies   []string         // and their bodies
}

// startEdge starts an edge in front of originURL that accepts tokens of
// the keys in ks; play mints the playback tokens the test reads with.
func startEdge(t testing.TB, originURL string, ks *playtoken.KeySet, play *playtoken.Signer) *testEdge {
	t.Helper()
	o := obs.New("edge", slog.New(slog.DiscardHandler))
	up, err := edge.NewOrigins(o, edge.OriginConfig{URLs: []string{originURL}, Timeout: 2 * time.Second}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := edge.NewServer(o, playtoken.NewVerifier(ks, playtoken.VerifierOptions{}), up,
		edge.Config{CacheBytes: 8 << 20, SliceBytes: 64 << 10, HeapSlices: true}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	e := &testEdge{t: t, srv: srv, obs: o, public: "http://" + ln.Addr().String(), play: play}
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = aln.Addr().String()
	e.admin = "http://" + e.addr
	e.serveAdmin(aln)
	t.Cleanup(func() {
		e.down()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("edge shutdown: %v", err)
		}
	})
	return e
}

// startSignedEdge starts an origin and an edge in front of it that
// accepts the tokens of a new signer.
func startSignedEdge(t testing.TB) (*playtoken.Signer, *testEdge) {
	t.Helper()
	signer := newSigner(t)
	return signer, startEdge(t, startOrigin(t), signer.KeySet(), signer)
}

// wantCache fails the test unless a GET of key answers X-Cache want
// (HIT, MISS); what says when.
func (e *testEdge) wantCache(key, want, what string) {
	e.t.Helper()
	if got := e.cacheStatus(key); got != want {
		e.t.Errorf("%s: X-Cache %q, want %s", what, got, want)
	}
}

// wantPurgeRequests fails the test unless the edge got n purge requests.
func (e *testEdge) wantPurgeRequests(n int) {
	e.t.Helper()
	if times, _ := e.purgeRequests(); len(times) != n {
		e.t.Errorf("edge got %d purge requests, want %d", len(times), n)
	}
}

func (e *testEdge) serveAdmin(ln net.Listener) {
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			e.srv.AdminHandler(ctx)
			if string(ctx.Path()) == "/purge" {
				e.mu.Lock()
				e.purges = append(e.purges, time.Now())
				e.statuses = append(e.statuses, ctx.Response.StatusCode())
				e.bodies = append(e.bodies, string(ctx.PostBody()))
				e.mu.Unlock()
			}
		},
		CloseOnShutdown: true,
	}
	e.mu.Lock()
	e.adminSrv = s
	e.mu.Unlock()
	go s.Serve(ln)
}

// down stops the admin listener: connections to it are refused.
func (e *testEdge) down() {
	e.mu.Lock()
	s := e.adminSrv
	e.adminSrv = nil
	e.mu.Unlock()
	if s != nil {
		if err := s.Shutdown(); err != nil {
			e.t.Errorf("admin shutdown: %v", err)
		}
	}
}

// up brings the admin listener back on the same port.
func (e *testEdge) up() {
	e.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may take a moment to be free
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.serveAdmin(ln)
}

// purgeRequests returns the times and answers of the POST /purge requests
// the edge received.
func (e *testEdge) purgeRequests() ([]time.Time, []int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]time.Time(nil), e.purges...), append([]int(nil), e.statuses...)
}

// lastBody returns the body of the last POST /purge the edge received.
func (e *testEdge) lastBody() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.bodies) == 0 {
		return ""
	}
	return e.bodies[len(e.bodies)-1]
}

// cacheStatus GETs key through the edge's public listener and returns its
// X-Cache header ("HIT" or "MISS").
func (e *testEdge) cacheStatus(key string) string {
	e.t.Helper()
	tok, err := e.play.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "u1", Prefix: "artists/1/"}, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := http.Get(e.public + "/t/" + tok + "/" + key)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		e.t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d", key, res.StatusCode)
	}
	return res.Header.Get("X-Cache")
}

// warm fetches keys until each is a cache hit.
func (e *testEdge) warm(keys ...string) {
	e.t.Helper()
	for _, k := range keys {
		e.cacheStatus(k)
		if got := e.cacheStatus(k); got != "HIT" {
			e.t.Fatalf("second GET %s: X-Cache %q, want HIT", k, got)
		}
	}
}

// openStore opens a fresh SQLite catalog.
func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "riff.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// fixture is a dispatcher over a fresh store, with its logs and metrics.
type fixture struct {
	t    testing.TB
	st   *store.Store
	obs  *obs.Obs
	logs *testrun.LockedBuffer
	d    *Dispatcher
}

// testConfig is a Config with short intervals for tests.
func testConfig(signer Signer, edges ...string) Config {
	return Config{
		Edges: edges, Signer: signer,
		Schedule: outbox.Schedule{
			PollInterval: 50 * time.Millisecond,
			BackoffMin:   20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			PruneInterval: 50 * time.Millisecond, Retain: time.Hour,
		},
	}
}

// start builds a dispatcher for cfg and runs it until the test ends.
func start(t testing.TB, cfg Config) *fixture {
	t.Helper()
	f := &fixture{t: t, st: openStore(t), logs: &testrun.LockedBuffer{}}
	f.obs = obs.New("catalogd", slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d, err := New(f.obs, f.st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.d = d
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	t.Cleanup(func() {
		d.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f
}

// enqueue adds prefixes to the outbox, wakes the dispatcher and returns the
// id of the last row.
func (f *fixture) enqueue(prefixes ...string) int64 {
	f.t.Helper()
	ctx := context.Background()
	if err := f.st.EnqueuePurge(ctx, prefixes...); err != nil {
		f.t.Fatal(err)
	}
	f.d.Kick()
	n, _, err := f.st.PurgeBacklog(ctx, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	rows, err := f.st.PendingPurges(ctx, 0, n)
	if err != nil || len(rows) == 0 {
		f.t.Fatalf("outbox: %v, %v", rows, err)
	}
	return rows[len(rows)-1].ID
}

// cursor returns edge's acknowledged id.
func (f *fixture) cursor(edge string) int64 {
	f.t.Helper()
	c, err := f.st.PurgeCursor(context.Background(), edge)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// waitAcked waits until edge acknowledged id.
func (f *fixture) waitAcked(edge string, id int64) {
	f.t.Helper()
	waitFor(f.t, 5*time.Second, func() bool { return f.cursor(edge) >= id }, "edge "+edge+" to acknowledge the purge")
}

// metric returns the value of the metric line that starts with name
// (labels included), or "" when there is none.
func (f *fixture) metric(name string) string {
	var b bytes.Buffer
	f.obs.Metrics.WritePrometheus(&b)
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// value is metric(name) as a number, -1 when the metric is missing.
func (f *fixture) value(name string) float64 {
	v, err := strconv.ParseFloat(f.metric(name), 64)
	if err != nil {
		return -1
	}
	return v
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
