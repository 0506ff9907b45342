package origin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/obs"
)

const (
	songDir   = "artists/1/albums/2/songs/3/v1/"
	mediaKey  = songDir + "aac_128.mp4"
	bigKey    = songDir + "aac_320.mp4"
	emptyKey  = songDir + "empty.mp4"
	coverKey  = "artists/1/cover.jpg"
	secretKey = "originals/3/upload-1.wav"
)

// pattern returns n bytes that differ at every offset of interest.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// countingStore wraps a Store and tracks readers Get hands out, so tests can
// check every one is closed. err, when set, is returned by every call.
type countingStore struct {
	blob.Store
	open  atomic.Int64
	gets  atomic.Int64
	stats atomic.Int64
	err   atomic.Pointer[error]
}

func (s *countingStore) fault() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (s *countingStore) Get(ctx context.Context, key string, rng *blob.Range) (io.ReadCloser, blob.Info, error) {
	s.gets.Add(1)
	if err := s.fault(); err != nil {
		return nil, blob.Info{}, err
	}
	rc, info, err := s.Store.Get(ctx, key, rng)
	if err != nil {
		return nil, info, err
	}
	s.open.Add(1)
	return &trackedReader{ReadCloser: rc, open: &s.open}, info, nil
}

func (s *countingStore) Stat(ctx context.Context, key string) (blob.Info, error) {
	s.stats.Add(1)
	if err := s.fault(); err != nil {
		return blob.Info{}, err
	}
	return s.Store.Stat(ctx, key)
}

func (s *countingStore) List(ctx context.Context, prefix string) iter.Seq2[blob.Info, error] {
	return s.Store.List(ctx, prefix)
}

type trackedReader struct {
	io.ReadCloser
	open   *atomic.Int64
	closed atomic.Bool
}

func (r *trackedReader) Close() error {
	if !r.closed.CompareAndSwap(false, true) {
		panic("reader closed twice")
	}
	r.open.Add(-1)
	return r.ReadCloser.Close()
}

type fixture struct {
	base  string
	store *countingStore
	srv   *Server
	obs   *obs.Obs
	media []byte
	big   []byte
	info  map[string]blob.Info
}

func newFixture(t testing.TB, cfg ServerConfig) *fixture {
	t.Helper()
	fs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	f := &fixture{store: &countingStore{Store: fs}, media: pattern(1000), big: pattern(5 << 20), info: map[string]blob.Info{}}
	for key, data := range map[string][]byte{
		mediaKey:                   f.media,
		bigKey:                     f.big,
		emptyKey:                   nil,
		songDir + "master.m3u8":    []byte("#EXTM3U\n"),
		songDir + "manifest.mpd":   []byte("<MPD/>"),
		songDir + "ogg_64.ogg":     []byte("OggS"),
		songDir + "aac_128.m3u8":   []byte("#EXTM3U\n"),
		coverKey:                   []byte("jpeg"),
		secretKey:                  []byte("RIFF master"),
		"artists/1/%2e%2e/x.mp4":   []byte("literal percent key"),
		"artists/1/albums/weird.x": []byte("?"),
	} {
		info, err := fs.Put(context.Background(), key, bytes.NewReader(data), blob.PutOptions{})
		if err != nil {
			t.Fatalf("Put %s: %v", key, err)
		}
		f.info[key] = info
	}
	logger := slog.New(slog.DiscardHandler)
	f.obs = obs.New("origin", logger)
	f.srv = NewServer(f.obs, f.store, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
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

type answer struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) do(t testing.TB, method, path string, hdr ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, f.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return answer{res.StatusCode, res.Header, body}
}

// raw sends target exactly as given, bypassing net/http's URL handling.
func (f *fixture) raw(t testing.TB, method, target string) int {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n", method, target)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// waitClosed waits until every reader the store handed out is closed.
func (f *fixture) waitClosed(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.store.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d store readers left open", f.store.open.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRanges(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	whole := func(size int) string { return strconv.Itoa(size) }
	tests := []struct {
		key, rng     string
		status       int
		contentRange string
		start, end   int // body = object[start:end]
	}{
		{mediaKey, "", 200, "", 0, 1000},
		{mediaKey, "bytes=0-", 206, "bytes 0-999/1000", 0, 1000},
		{mediaKey, "bytes=0-0", 206, "bytes 0-0/1000", 0, 1},
		{mediaKey, "bytes=0-99", 206, "bytes 0-99/1000", 0, 100},
		{mediaKey, "bytes=250-749", 206, "bytes 250-749/1000", 250, 750},
		{mediaKey, "bytes=999-", 206, "bytes 999-999/1000", 999, 1000},
		{mediaKey, "bytes=-500", 206, "bytes 500-999/1000", 500, 1000},
		{mediaKey, "bytes=-1", 206, "bytes 999-999/1000", 999, 1000},
		{mediaKey, "bytes=-5000", 206, "bytes 0-999/1000", 0, 1000},
		{mediaKey, "bytes=500-1500", 206, "bytes 500-999/1000", 500, 1000},
		{mediaKey, "bytes=0-99999999999999999999", 206, "bytes 0-999/1000", 0, 1000},
		{mediaKey, " bytes = 10 - 19 ", 206, "bytes 10-19/1000", 10, 20},
		{mediaKey, "bytes=1000-", 416, "bytes */1000", 0, 0},
		{mediaKey, "bytes=5000-6000", 416, "bytes */1000", 0, 0},
		{mediaKey, "bytes=99999999999999999999-", 416, "bytes */1000", 0, 0},
		{mediaKey, "bytes=-0", 416, "bytes */1000", 0, 0},
		{mediaKey, "bytes=100-50", 200, "", 0, 1000},
		{mediaKey, "bytes=0-1,5-6", 200, "", 0, 1000},
		{mediaKey, "items=0-5", 200, "", 0, 1000},
		{mediaKey, "bytes=x-y", 200, "", 0, 1000},
		{emptyKey, "", 200, "", 0, 0},
		{emptyKey, "bytes=0-", 416, "bytes */0", 0, 0},
		{emptyKey, "bytes=-1", 200, "", 0, 0},
		{bigKey, "bytes=1048576-2097151", 206, "bytes 1048576-2097151/5242880", 1048576, 2097152},
		{bigKey, "", 200, "", 0, 5 << 20},
	}
	for _, tt := range tests {
		name := tt.key + " " + tt.rng
		var hdr []string
		if tt.rng != "" {
			hdr = []string{"Range", tt.rng}
		}
		got := f.do(t, "GET", "/"+tt.key, hdr...)
		if got.status != tt.status {
			t.Errorf("%s: status = %d, want %d", name, got.status, tt.status)
			continue
		}
		if cr := got.header.Get("Content-Range"); cr != tt.contentRange {
			t.Errorf("%s: Content-Range = %q, want %q", name, cr, tt.contentRange)
		}
		if tt.status == 416 {
			continue
		}
		obj := f.media
		switch tt.key {
		case bigKey:
			obj = f.big
		case emptyKey:
			obj = nil
		}
		want := obj[tt.start:tt.end]
		if cl := got.header.Get("Content-Length"); cl != whole(len(want)) {
			t.Errorf("%s: Content-Length = %s, want %d", name, cl, len(want))
		}
		if !bytes.Equal(got.body, want) {
			t.Errorf("%s: body is %d bytes, not bytes %d-%d of the object", name, len(got.body), tt.start, tt.end)
		}
		if got.header.Get("Accept-Ranges") != "bytes" || got.header.Get("ETag") != f.info[tt.key].ETag {
			t.Errorf("%s: Accept-Ranges %q ETag %q", name, got.header.Get("Accept-Ranges"), got.header.Get("ETag"))
		}
	}
	f.waitClosed(t)
}

func TestOneStoreCallForARange(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	f.do(t, "GET", "/"+bigKey, "Range", "bytes=0-1023")
	if g, s := f.store.gets.Load(), f.store.stats.Load(); g != 1 || s != 0 {
		t.Errorf("a range GET made %d Gets and %d Stats, want 1 and 0", g, s)
	}
}

func TestHeaders(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	tests := []struct {
		key, contentType, cacheControl string
	}{
		{songDir + "master.m3u8", "application/vnd.apple.mpegurl", cacheImmutable},
		{songDir + "aac_128.m3u8", "application/vnd.apple.mpegurl", cacheImmutable},
		{songDir + "manifest.mpd", "application/dash+xml", cacheImmutable},
		{mediaKey, "audio/mp4", cacheImmutable},
		{songDir + "ogg_64.ogg", "audio/ogg", cacheImmutable},
		{coverKey, "image/jpeg", cacheShort},
	}
	for _, tt := range tests {
		got := f.do(t, "GET", "/"+tt.key)
		info := f.info[tt.key]
		if got.status != 200 {
			t.Errorf("GET %s: %d", tt.key, got.status)
			continue
		}
		for h, want := range map[string]string{
			"Content-Type":   tt.contentType,
			"Cache-Control":  tt.cacheControl,
			"Accept-Ranges":  "bytes",
			"ETag":           info.ETag,
			"Last-Modified":  info.ModTime.UTC().Format(http.TimeFormat),
			"Content-Length": strconv.FormatInt(info.Size, 10),
		} {
			if v := got.header.Get(h); v != want {
				t.Errorf("GET %s: %s = %q, want %q", tt.key, h, v, want)
			}
		}
	}
}

func TestHead(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	tests := []struct {
		key, rng             string
		status               int
		length, contentRange string
	}{
		{mediaKey, "", 200, "1000", ""},
		{bigKey, "", 200, "5242880", ""},
		{mediaKey, "bytes=100-199", 206, "100", "bytes 100-199/1000"},
		{mediaKey, "bytes=-10", 206, "10", "bytes 990-999/1000"},
		{mediaKey, "bytes=2000-", 416, "", "bytes */1000"},
		{emptyKey, "", 200, "0", ""},
		{"artists/9/missing.mp4", "", 404, "", ""},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("HEAD", f.base+"/"+tt.key, nil)
		if tt.rng != "" {
			req.Header.Set("Range", tt.rng)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tt.status {
			t.Errorf("HEAD %s %s: status %d, want %d", tt.key, tt.rng, res.StatusCode, tt.status)
			continue
		}
		if tt.length != "" {
			if got := res.Header.Get("Content-Length"); got != tt.length {
				t.Errorf("HEAD %s %s: Content-Length %q, want %s", tt.key, tt.rng, got, tt.length)
			}
		}
		if got := res.Header.Get("Content-Range"); got != tt.contentRange {
			t.Errorf("HEAD %s %s: Content-Range %q, want %q", tt.key, tt.rng, got, tt.contentRange)
		}
	}
	// A HEAD on the wire has headers and no body: the next response on the
	// connection must start right after them.
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "HEAD /%s HTTP/1.1\r\nHost: o\r\n\r\nGET /%s HTTP/1.1\r\nHost: o\r\nRange: bytes=0-3\r\n\r\n", mediaKey, mediaKey)
	br := bufio.NewReader(conn)
	head, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
	if err != nil || head.StatusCode != 200 || head.ContentLength != 1000 {
		t.Fatalf("pipelined HEAD = %v, %v", head, err)
	}
	next, err := http.ReadResponse(br, nil)
	if err != nil || next.StatusCode != 206 {
		t.Fatalf("GET after HEAD = %v, %v", next, err)
	}
	b, _ := io.ReadAll(next.Body)
	if !bytes.Equal(b, f.media[:4]) {
		t.Errorf("GET after HEAD body = %x, want %x", b, f.media[:4])
	}
	if g := f.store.gets.Load(); g != 1 {
		t.Errorf("HEADs opened %d readers, want only the GET's", g-1)
	}
	f.waitClosed(t)
}

func TestConditionals(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	info := f.info[mediaKey]
	etag := info.ETag
	lm := info.ModTime.UTC().Format(http.TimeFormat)
	before := info.ModTime.Add(-time.Hour).UTC().Format(http.TimeFormat)
	after := info.ModTime.Add(time.Hour).UTC().Format(http.TimeFormat)
	weak := "W/" + etag
	tests := []struct {
		name         string
		hdr          []string
		status       int
		contentRange string
	}{
		{"INM match", []string{"If-None-Match", etag}, 304, ""},
		{"INM weak match", []string{"If-None-Match", weak}, 304, ""},
		{"INM in list", []string{"If-None-Match", `"nope", ` + etag}, 304, ""},
		{"INM star", []string{"If-None-Match", "*"}, 304, ""},
		{"INM other", []string{"If-None-Match", `"nope"`}, 200, ""},
		{"INM beats range", []string{"If-None-Match", etag, "Range", "bytes=0-9"}, 304, ""},
		{"INM beats 416", []string{"If-None-Match", etag, "Range", "bytes=5000-"}, 304, ""},
		{"IMS same", []string{"If-Modified-Since", lm}, 304, ""},
		{"IMS later", []string{"If-Modified-Since", after}, 304, ""},
		{"IMS earlier", []string{"If-Modified-Since", before}, 200, ""},
		{"INM other wins over IMS", []string{"If-None-Match", `"nope"`, "If-Modified-Since", after}, 200, ""},
		{"If-Range etag", []string{"If-Range", etag, "Range", "bytes=0-9"}, 206, "bytes 0-9/1000"},
		{"If-Range etag suffix", []string{"If-Range", etag, "Range", "bytes=-10"}, 206, "bytes 990-999/1000"},
		{"If-Range other etag", []string{"If-Range", `"nope"`, "Range", "bytes=0-9"}, 200, ""},
		{"If-Range weak etag", []string{"If-Range", weak, "Range", "bytes=0-9"}, 200, ""},
		{"If-Range other etag suffix", []string{"If-Range", `"nope"`, "Range", "bytes=-10"}, 200, ""},
		{"If-Range date", []string{"If-Range", lm, "Range", "bytes=0-9"}, 206, "bytes 0-9/1000"},
		{"If-Range old date", []string{"If-Range", before, "Range", "bytes=0-9"}, 200, ""},
		{"If-Range mismatch, unsatisfiable", []string{"If-Range", `"nope"`, "Range", "bytes=5000-"}, 200, ""},
	}
	for _, tt := range tests {
		got := f.do(t, "GET", "/"+mediaKey, tt.hdr...)
		if got.status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, got.status, tt.status)
			continue
		}
		if cr := got.header.Get("Content-Range"); cr != tt.contentRange {
			t.Errorf("%s: Content-Range %q, want %q", tt.name, cr, tt.contentRange)
		}
		switch tt.status {
		case 304:
			if len(got.body) != 0 || got.header.Get("ETag") != etag || got.header.Get("Cache-Control") != cacheImmutable {
				t.Errorf("%s: 304 with %d body bytes, ETag %q, Cache-Control %q", tt.name, len(got.body), got.header.Get("ETag"), got.header.Get("Cache-Control"))
			}
		case 200:
			if !bytes.Equal(got.body, f.media) {
				t.Errorf("%s: 200 body is not the whole object (%d bytes)", tt.name, len(got.body))
			}
		case 206:
			if len(got.body) != 10 {
				t.Errorf("%s: 206 body %d bytes, want 10", tt.name, len(got.body))
			}
		}
	}
	f.waitClosed(t)
}

func TestSecret(t *testing.T) {
	f := newFixture(t, ServerConfig{Secret: "s3cret", Admin: true})
	tests := []struct {
		name   string
		hdr    []string
		path   string
		status int
	}{
		{"missing", nil, "/" + mediaKey, 403},
		{"empty", []string{HeaderSecret, ""}, "/" + mediaKey, 403},
		{"wrong", []string{HeaderSecret, "s3cres"}, "/" + mediaKey, 403},
		{"prefix", []string{HeaderSecret, "s3c"}, "/" + mediaKey, 403},
		{"longer", []string{HeaderSecret, "s3cret!"}, "/" + mediaKey, 403},
		{"right", []string{HeaderSecret, "s3cret"}, "/" + mediaKey, 200},
		{"right, missing key", []string{HeaderSecret, "s3cret"}, "/artists/9/x.mp4", 404},
		{"no secret, missing key", nil, "/artists/9/x.mp4", 403},
		{"health needs none", nil, "/healthz", 200},
		{"readiness needs none", nil, "/readyz", 200},
	}
	for _, tt := range tests {
		if got := f.do(t, "GET", tt.path, tt.hdr...); got.status != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, got.status, tt.status)
		}
	}
	if g := f.store.gets.Load(); g != 2 {
		t.Errorf("store reached %d times, want 2 (only with the right secret)", g)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	for _, tt := range []struct {
		method, target string
		status         int
	}{
		{"GET", "/" + secretKey, 404},
		{"HEAD", "/" + secretKey, 404},
		{"GET", "/originals/", 400},
		{"GET", "/other/x.mp4", 404},
		{"GET", "/metrics", 404}, // no admin on this handler
		{"GET", "/artists/9/nothing.mp4", 404},
		{"GET", "/artists", 404},
		{"GET", "/", 400},
		{"GET", "/artists/", 400},
		{"GET", "/artists/../" + secretKey, 400},
		{"GET", "/artists/%2e%2e/" + secretKey, 400},
		{"GET", "/artists/%2E%2E/" + secretKey, 400},
		{"GET", "/artists/..%2f" + secretKey, 400},
		{"GET", "/artists/..%2F" + secretKey, 400},
		{"GET", "/artists/%2e%2e%2f" + secretKey, 400},
		{"GET", "/artists/1/albums/2/songs/3/v1/%2e/aac_128.mp4", 400},
		{"GET", "/artists/1/albums/2/songs/3/v1/./aac_128.mp4", 400},
		{"GET", "/artists/%252e%252e/" + secretKey, 400}, // double encoding
		{"GET", "/artists/1/%2e%2e/x.mp4", 400},          // decodes to a ".." segment
		{"GET", "/artists/1/%252e%252e/x.mp4", 400},      // would name a literal "%2e%2e"
		{"GET", "/artists/%5c..%5c" + secretKey, 400},
		{"GET", "/artists/..\\" + secretKey, 400},
		{"GET", "//artists/1/cover.jpg", 400},
		{"GET", "/artists//1/cover.jpg", 400},
		{"GET", "/artists/1%2f%2fcover.jpg", 400},
		{"GET", "/artists/1/cover.jpg%00", 400},
		{"GET", "/artists/1/cover.jpg%zz", 400},
		{"GET", "/artists/1/cover.jpg%2", 400},
		{"GET", "/artists/.hidden", 400},
		{"GET", "/artists/1/%c0%ae%c0%ae/x", 400}, // overlong UTF-8 dots
		{"GET", "/%61rtists/1/cover.jpg", 200},    // plain escapes decode
		{"GET", "/artists/1/cover.jpg?x=../../originals", 200},
		{"GET", "http://origin/artists/1/cover.jpg", 200}, // absolute form
		{"GET", "http://origin/artists/../" + secretKey, 400},
		{"POST", "/" + mediaKey, 405},
		{"PUT", "/" + mediaKey, 405},
		{"DELETE", "/" + mediaKey, 405},
		{"OPTIONS", "/" + mediaKey, 405},
	} {
		if got := f.raw(t, tt.method, tt.target); got != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.target, got, tt.status)
		}
	}
	got := f.do(t, "DELETE", "/"+mediaKey)
	if allow := got.header.Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("405 Allow = %q, want GET, HEAD", allow)
	}
	if got.header.Get("Cache-Control") != cacheNone || !strings.Contains(string(got.body), `"status":405`) {
		t.Errorf("405 answer: Cache-Control %q body %q", got.header.Get("Cache-Control"), got.body)
	}
}

func TestStoreErrors(t *testing.T) {
	f := newFixture(t, ServerConfig{Admin: true})
	for _, tt := range []struct {
		err    error
		status int
		kind   string
	}{
		{errors.New("s3: connection reset by peer"), 503, "store_unavailable"},
		{fmt.Errorf("blob: get: %w", context.DeadlineExceeded), 504, "store_timeout"},
	} {
		f.store.err.Store(&tt.err)
		got := f.do(t, "GET", "/"+mediaKey, "Range", "bytes=0-9")
		if got.status != tt.status || strings.Contains(string(got.body), "s3:") {
			t.Errorf("store error %v: status %d body %q, want %d and no internal text", tt.err, got.status, got.body, tt.status)
		}
		f.store.err.Store(nil)
		metrics := string(f.do(t, "GET", "/metrics").body)
		if want := fmt.Sprintf(`riff_errors_total{component="origin",kind=%q} 1`, tt.kind); !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	broken := errors.New("disk on fire")
	f.store.err.Store(&broken)
	if got := f.do(t, "GET", "/readyz"); got.status != 503 {
		t.Errorf("/readyz with a broken store: %d, want 503", got.status)
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, ServerConfig{Admin: true})
	f.do(t, "GET", "/"+mediaKey, "Range", "bytes=0-99")
	f.do(t, "GET", "/"+mediaKey)
	f.waitClosed(t)
	m := string(f.do(t, "GET", "/metrics").body)
	for _, want := range []string{
		`riff_origin_sent_bytes_total{component="origin"} 1100`,
		`riff_origin_store_duration_seconds_bucket{component="origin",op="get"`,
		`riff_http_requests_total{component="origin",code="206"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestConcurrentRanges(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 1))
			client := &http.Client{}
			for range 20 {
				start := rnd.IntN(len(f.big))
				end := min(len(f.big), start+1+rnd.IntN(1<<20))
				req, _ := http.NewRequest("GET", f.base+"/"+bigKey, nil)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end-1))
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(res.Body)
				res.Body.Close()
				if err != nil || res.StatusCode != 206 || !bytes.Equal(b, f.big[start:end]) {
					t.Errorf("range %d-%d: status %d, %d bytes, err %v", start, end-1, res.StatusCode, len(b), err)
					return
				}
				if want := fmt.Sprintf("bytes %d-%d/%d", start, end-1, len(f.big)); res.Header.Get("Content-Range") != want {
					t.Errorf("Content-Range %q, want %q", res.Header.Get("Content-Range"), want)
				}
			}
		})
	}
	wg.Wait()
	f.waitClosed(t)
}

func TestClientGoneClosesReader(t *testing.T) {
	f := newFixture(t, ServerConfig{})
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /%s HTTP/1.1\r\nHost: o\r\n\r\n", bigKey)
	buf := make([]byte, 4096)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	f.waitClosed(t)
}

// BenchmarkRangeGet measures a 1 MiB range GET through the handler,
// including writing the response (to io.Discard).
func BenchmarkRangeGet(b *testing.B) {
	fs, err := blob.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()
	if _, err := fs.Put(context.Background(), bigKey, bytes.NewReader(pattern(5<<20)), blob.PutOptions{}); err != nil {
		b.Fatal(err)
	}
	s := NewServer(obs.New("origin", slog.New(slog.DiscardHandler)), fs, ServerConfig{})
	var ctx fasthttp.RequestCtx
	w := bufio.NewWriter(io.Discard)
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI("/" + bigKey)
		ctx.Request.Header.Set("Range", "bytes=1048576-2097151")
		s.Handler(&ctx)
		if ctx.Response.StatusCode() != 206 {
			b.Fatalf("status %d", ctx.Response.StatusCode())
		}
		if err := ctx.Response.Write(w); err != nil {
			b.Fatal(err)
		}
		w.Flush()
	}
}

// FuzzRequestKey checks that whatever the request target, requestKey never
// panics and only ever yields valid keys under the published prefix, with no
// escapes or dot segments left in them.
func FuzzRequestKey(f *testing.F) {
	for _, s := range []string{"/" + mediaKey, "/artists/%2e%2e/originals/x", "/artists/..%2fx", "//artists/x",
		"/artists/%252e/x", "http://h/artists/1/x", "/artists/1/x?q=%2e%2e", "/%61rtists/1", "/artists/%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetRequestURI(target)
		key, status := requestKey(&ctx)
		if status != 0 {
			if key != "" || (status != 400 && status != 404) {
				t.Fatalf("requestKey(%q) = %q, %d", target, key, status)
			}
			return
		}
		if err := blob.ValidateKey(key); err != nil {
			t.Fatalf("requestKey(%q) = %q, which is invalid: %v", target, key, err)
		}
		if !strings.HasPrefix(key, blobkey.Root) || strings.Contains(key, "%") {
			t.Fatalf("requestKey(%q) = %q", target, key)
		}
		for seg := range strings.SplitSeq(key, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("requestKey(%q) = %q, with a %q segment", target, key, seg)
			}
		}
	})
}
