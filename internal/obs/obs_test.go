package obs

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"riff/internal/testrun"
)

func newTestObs(t *testing.T) (*Obs, *testrun.LockedBuffer) {
	t.Helper()
	logs := &testrun.LockedBuffer{}
	logger, err := NewLogger(logs, "debug")
	if err != nil {
		t.Fatal(err)
	}
	return New("test", logger), logs
}

func TestNewLoggerRejectsBadLevel(t *testing.T) {
	if _, err := NewLogger(io.Discard, "loud"); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("NewLogger(loud) err = %v, want an error naming the level", err)
	}
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHTTPEndpointsAndMiddleware(t *testing.T) {
	o, logs := newTestObs(t)
	dbUp := true
	o.AddCheck("db", func(context.Context) error {
		if !dbUp {
			return errors.New("connection refused")
		}
		return nil
	})
	queued := 0
	o.AddDetail("queue", func() any { return map[string]int{"depth": queued} })
	mux := http.NewServeMux()
	mux.Handle("/metrics", o.Handler())
	mux.Handle("/healthz", o.Handler())
	mux.Handle("/readyz", o.Handler())
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		o.Logger.InfoContext(r.Context(), "inside handler")
		w.Write([]byte("hi"))
	})
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) { panic("kaboom") })
	srv := httptest.NewServer(o.Middleware(mux))
	defer srv.Close()

	res, body := get(t, srv.URL+"/hello", map[string]string{"X-Request-Id": "abc-123"})
	if res.StatusCode != 200 || body != "hi" {
		t.Fatalf("/hello = %d %q", res.StatusCode, body)
	}
	if got := res.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("echoed request id = %q, want abc-123", got)
	}
	// Every line logged during the request carries its id.
	var inside, access bool
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "inside handler" {
			inside = rec["request_id"] == "abc-123"
		}
		if rec["msg"] == "request" && rec["path"] == "/hello" {
			access = rec["request_id"] == "abc-123" && rec["status"] == float64(200)
		}
	}
	if !inside || !access {
		t.Errorf("log lines missing request id (inside=%v access=%v):\n%s", inside, access, logs)
	}

	// A bad incoming id is replaced, never echoed.
	res, _ = get(t, srv.URL+"/hello", map[string]string{"X-Request-Id": "bad id\twith spaces"})
	if got := res.Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " \t") {
		t.Errorf("generated request id = %q", got)
	}

	res, body = get(t, srv.URL+"/boom", nil)
	if res.StatusCode != 500 || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"status":500`) {
		t.Errorf("/boom = %d %q %q, want 500 problem+json", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if !strings.Contains(logs.String(), "kaboom") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("panic not logged with stack:\n%s", logs)
	}

	if res, body = get(t, srv.URL+"/healthz", nil); res.StatusCode != 200 || !strings.Contains(body, "ok") {
		t.Errorf("/healthz = %d %q", res.StatusCode, body)
	}
	if res, body = get(t, srv.URL+"/readyz", nil); res.StatusCode != 200 || !strings.Contains(body, `"detail":{"queue":{"depth":0}}`) {
		t.Errorf("/readyz = %d %q, want 200 with the queue detail", res.StatusCode, body)
	}
	dbUp, queued = false, 7
	res, body = get(t, srv.URL+"/readyz", nil)
	if res.StatusCode != 503 || !strings.Contains(body, `"failed":["db"]`) || strings.Contains(body, "refused") || !strings.Contains(body, `"depth":7`) {
		t.Errorf("/readyz with db down = %d %q, want 503 naming db without internal text, with the queue detail", res.StatusCode, body)
	}

	o.CountError("not_found")
	_, body = get(t, srv.URL+"/metrics", nil)
	for _, want := range []string{
		`riff_http_requests_total{component="test",code="200"}`,
		`riff_http_requests_total{component="test",code="500"} 1`,
		`riff_panics_total{component="test"} 1`,
		`riff_errors_total{component="test",kind="not_found"} 1`,
		`riff_http_request_duration_seconds_bucket{component="test"`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestFastEndpointsAndMiddleware(t *testing.T) {
	o, logs := newTestObs(t)
	o.AddCheck("origin", func(context.Context) error { return errors.New("down") })
	handler := o.FastMiddleware(func(ctx *fasthttp.RequestCtx) {
		if o.FastAdmin(ctx) {
			return
		}
		switch string(ctx.Path()) {
		case "/boom":
			panic("fast kaboom")
		default:
			ctx.SetBodyString("hi")
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: handler}
	go srv.Serve(ln)
	defer srv.Shutdown()
	base := "http://" + ln.Addr().String()

	res, body := get(t, base+"/x", map[string]string{"X-Request-Id": "edge-1"})
	if res.StatusCode != 200 || body != "hi" || res.Header.Get("X-Request-Id") != "edge-1" {
		t.Errorf("/x = %d %q id=%q", res.StatusCode, body, res.Header.Get("X-Request-Id"))
	}
	res, _ = get(t, base+"/x", nil)
	a := res.Header.Get("X-Request-Id")
	res, _ = get(t, base+"/x", nil)
	if b := res.Header.Get("X-Request-Id"); a == "" || a == b {
		t.Errorf("generated ids %q, %q: want distinct and non-empty", a, b)
	}
	res, body = get(t, base+"/boom", map[string]string{"X-Request-Id": "edge-2"})
	if res.StatusCode != 500 || !strings.Contains(body, `"status":500`) {
		t.Errorf("/boom = %d %q", res.StatusCode, body)
	}
	if !strings.Contains(logs.String(), `"request_id":"edge-2"`) || !strings.Contains(logs.String(), "fast kaboom") {
		t.Errorf("panic log lacks request id or message:\n%s", logs)
	}
	if res, _ = get(t, base+"/healthz", nil); res.StatusCode != 200 {
		t.Errorf("/healthz = %d", res.StatusCode)
	}
	if res, body = get(t, base+"/readyz", nil); res.StatusCode != 503 || !strings.Contains(body, "origin") {
		t.Errorf("/readyz = %d %q, want 503 naming origin", res.StatusCode, body)
	}
	_, body = get(t, base+"/metrics", nil)
	if !strings.Contains(body, `riff_http_requests_total{component="test",code="500"} 1`) {
		t.Errorf("/metrics lacks the 500 count:\n%s", body)
	}
}

func BenchmarkFastMiddleware(b *testing.B) {
	o := New("bench", slog.New(slog.DiscardHandler))
	h := o.FastMiddleware(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(200) })
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI("/t/x/artists/1")
	b.ReportAllocs()
	for b.Loop() {
		ctx.Response.Reset()
		h(&ctx)
	}
}
