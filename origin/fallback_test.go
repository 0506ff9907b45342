package origin

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"riff/internal/blob"
	"riff/internal/obs"
)

// startEmpty serves an empty store (a region replication has not reached)
// with cfg on loopback.
func startEmpty(t *testing.T, cfg ServerConfig, lns ...net.Listener) *fixture {
	t.Helper()
	fs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	f := &fixture{store: &countingStore{Store: fs}}
	f.obs = obs.New("origin", slog.New(slog.DiscardHandler))
	f.srv = NewServer(f.obs, f.store, cfg)
	var ln net.Listener
	if len(lns) > 0 {
		ln = lns[0]
	} else if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	go f.srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.srv.Shutdown(ctx)
	})
	f.base = "http://" + ln.Addr().String()
	return f
}

func newFallback(t *testing.T, base, secret string) *Fallback {
	t.Helper()
	fb, err := NewFallback(base, secret, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fb.Close)
	return fb
}

// TestFallback: an origin whose store lacks an object (replication lag) or
// fails (the store is down) serves it from the other region's origin,
// byte-exact, whole and ranged, marked; originals never; and a request
// from another origin's fallback does not fall back again.
func TestFallback(t *testing.T) {
	a := newFixture(t, ServerConfig{Secret: "a-secret"})
	b := startEmpty(t, ServerConfig{Fallback: newFallback(t, a.base, "a-secret")})

	got := b.do(t, "GET", "/"+bigKey)
	if got.status != 200 || !bytes.Equal(got.body, a.big) || got.header.Get(HeaderFallback) != "1" {
		t.Fatalf("GET missing object = %d, %d bytes, %s=%q; want 200, the object, marked", got.status, len(got.body), HeaderFallback, got.header.Get(HeaderFallback))
	}
	if got.header.Get("ETag") != a.info[bigKey].ETag {
		t.Errorf("ETag = %q, want the fallback's %q", got.header.Get("ETag"), a.info[bigKey].ETag)
	}
	got = b.do(t, "GET", "/"+bigKey, "Range", "bytes=1048576-2097151")
	if got.status != 206 || !bytes.Equal(got.body, a.big[1<<20:2<<20]) || got.header.Get("Content-Range") != "bytes 1048576-2097151/5242880" {
		t.Errorf("ranged GET = %d %q, %d bytes", got.status, got.header.Get("Content-Range"), len(got.body))
	}
	got = b.do(t, "GET", "/"+mediaKey, "Range", "bytes=-10")
	if got.status != 206 || !bytes.Equal(got.body, a.media[990:]) {
		t.Errorf("suffix GET = %d, %q", got.status, got.body)
	}
	got = b.do(t, "HEAD", "/"+bigKey)
	if got.status != 200 || got.header.Get("Content-Length") != "5242880" || got.header.Get(HeaderFallback) != "1" {
		t.Errorf("HEAD = %d, length %s", got.status, got.header.Get("Content-Length"))
	}
	got = b.do(t, "GET", "/"+mediaKey, "Range", "bytes=5000-")
	if got.status != 416 || got.header.Get("Content-Range") != "bytes */1000" {
		t.Errorf("range past the end = %d %q, want 416 bytes */1000", got.status, got.header.Get("Content-Range"))
	}
	// Missing everywhere: 404, not an error.
	if got := b.do(t, "GET", "/artists/9/albums/9/songs/9/v1/aac_64.mp4"); got.status != 404 {
		t.Errorf("object in no region = %d, want 404", got.status)
	}
	// Never originals (the origin refuses them before any store call).
	if got := b.do(t, "GET", "/"+secretKey); got.status != 404 {
		t.Errorf("original = %d, want 404", got.status)
	}
	// A fallback request does not fall back again.
	if got := b.do(t, "GET", "/"+mediaKey, HeaderFallbackHop, "1"); got.status != 404 {
		t.Errorf("GET with %s = %d, want 404 (no second hop)", HeaderFallbackHop, got.status)
	}

	// The local store down: served from the fallback too.
	down := errors.New("disk gone")
	b.store.err.Store(&down)
	if got := b.do(t, "GET", "/"+mediaKey); got.status != 200 || !bytes.Equal(got.body, a.media) {
		t.Errorf("GET with the store down = %d, %d bytes", got.status, len(got.body))
	}
	// Down and the fallback does not have it: the store's failure (503).
	if got := b.do(t, "GET", "/artists/9/albums/9/songs/9/v1/aac_64.mp4"); got.status != 503 {
		t.Errorf("GET with the store down, object nowhere = %d, want 503", got.status)
	}
	b.store.err.Store(nil)

	var m bytes.Buffer
	b.obs.Metrics.WritePrometheus(&m)
	if !strings.Contains(m.String(), `riff_origin_fallback_total{component="origin",result="served"} 7`) {
		t.Errorf("fallback metrics:\n%s", grepLines(m.String(), "fallback"))
	}
	a.waitClosed(t)
	b.waitClosed(t)
}

// TestFallbackUnreachable: a fallback origin that is down or slow costs a
// bounded wait, and the answer is the local one.
func TestFallbackUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Accepts and never answers.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	fb, err := NewFallback("http://"+ln.Addr().String(), "", 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	b := startEmpty(t, ServerConfig{Fallback: fb})
	start := time.Now()
	if got := b.do(t, "GET", "/"+mediaKey); got.status != 404 {
		t.Errorf("GET with a silent fallback = %d, want 404", got.status)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("GET took %v: the fallback timeout is not applied", d)
	}
	// Two origins naming each other do not loop.
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a2 := startEmpty(t, ServerConfig{Fallback: newFallback(t, "http://"+lnA.Addr().String(), "")})
	startEmpty(t, ServerConfig{Fallback: newFallback(t, a2.base, "")}, lnA)
	if got := a2.do(t, "GET", "/"+mediaKey); got.status != 404 {
		t.Errorf("GET between two origins falling back on each other = %d, want 404", got.status)
	}
	for _, bad := range []string{"", "ftp://x", "http://u:p@x", "http://x/?q"} {
		if _, err := NewFallback(bad, "", 0); err == nil {
			t.Errorf("NewFallback(%q) accepted", bad)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
