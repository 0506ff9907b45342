package obs

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/internal/testrun"

	"github.com/valyala/fasthttp"
)

// sentryServer is an in-test server speaking the receiving end of the
// Sentry protocol: it keeps every event posted to /api/{project}/envelope/.
type sentryServer struct {
	addr string
	mu   sync.Mutex
	raw  bytes.Buffer
	evs  []map[string]any
}

func newSentryServer(t *testing.T) *sentryServer {
	t.Helper()
	s := &sentryServer{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/42/envelope/" {
			t.Errorf("Sentry request to %s", r.URL.Path)
		}
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.raw.Write(b)
		// An envelope: a header line, then (item header line, payload
		// line) pairs.
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 1<<20)
		sc.Scan()
		for sc.Scan() {
			var item struct{ Type string }
			if err := json.Unmarshal(sc.Bytes(), &item); err != nil {
				t.Errorf("envelope item header %q: %v", sc.Bytes(), err)
				return
			}
			sc.Scan()
			if item.Type == "event" {
				var ev map[string]any
				if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
					t.Errorf("event %q: %v", sc.Bytes(), err)
				}
				s.evs = append(s.evs, ev)
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *sentryServer) events() ([]map[string]any, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]any(nil), s.evs...), s.raw.String()
}

// serveHTTP serves h on a loopback listener until the test ends and
// returns its base URL.
func serveHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func tagsOf(ev map[string]any) map[string]any {
	tags, _ := ev["tags"].(map[string]any)
	return tags
}

const (
	secretToken = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1LTcifQ.c2lnbmF0dXJl"
	secretEmail = "listener@example.com"
	secretPass  = "hunter2-correct-horse"
)

// TestErrorTrackingReportsPanicsAnd5xxOnceWithoutSecrets: a panic and a
// 5xx each reach the Sentry endpoint as exactly one event with the route,
// request id and user id, and nothing of the token, password or email
// address the requests carried.
func TestErrorTrackingReportsPanicsAnd5xxOnceWithoutSecrets(t *testing.T) {
	sentry := newSentryServer(t)
	o := New("catalogd", slog.New(slog.NewJSONHandler(io.Discard, nil)))
	flush, err := o.TrackErrors(ErrorTracking{DSN: "http://publickey@" + sentry.addr + "/42", Environment: "test", Release: "riff@test"})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /songs/{id}", func(w http.ResponseWriter, r *http.Request) {
		SetUser(r.Context(), "7")
		panic("cannot load song for " + secretEmail + " with " + secretToken)
	})
	mux.HandleFunc("POST /playlists", func(w http.ResponseWriter, r *http.Request) {
		SetUser(r.Context(), "7")
		http.Error(w, "database unavailable", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {})
	base := serveHTTP(t, o.Middleware(mux))

	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+secretToken)
		req.Header.Set("Cookie", "session="+secretToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get(HeaderRequestID)
	}
	panicStatus, panicID := do("GET", "/songs/12?token="+secretToken, "")
	failStatus, failID := do("POST", "/playlists?email="+secretEmail, `{"password":"`+secretPass+`"}`)
	okStatus, _ := do("GET", "/ok", "")
	if panicStatus != 500 || failStatus != 503 || okStatus != 200 {
		t.Fatalf("statuses %d %d %d, want 500 503 200", panicStatus, failStatus, okStatus)
	}
	flush(5 * time.Second)

	evs, raw := sentry.events()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (one panic, one 503; none for the 200):\n%s", len(evs), raw)
	}
	byID := map[string]map[string]any{}
	for _, ev := range evs {
		byID[tagsOf(ev)["request_id"].(string)] = ev
	}
	pe, fe := byID[panicID], byID[failID]
	if pe == nil || fe == nil {
		t.Fatalf("events do not carry the request ids %s and %s:\n%s", panicID, failID, raw)
	}
	if tagsOf(pe)["route"] != "GET /songs/{id}" || tagsOf(fe)["route"] != "POST /playlists" || tagsOf(fe)["status"] != "503" {
		t.Errorf("tags %v and %v, want the mux patterns as routes", tagsOf(pe), tagsOf(fe))
	}
	if pe["release"] != "riff@test" || pe["environment"] != "test" {
		t.Errorf("release %v environment %v", pe["release"], pe["environment"])
	}
	for _, ev := range evs {
		if u, _ := ev["user"].(map[string]any); u["id"] != "7" {
			t.Errorf("event user %v, want id 7 only", ev["user"])
		}
	}
	// One exception, with the frames that panicked (the handler above).
	if exc, _ := pe["exception"].([]any); len(exc) != 1 || !strings.Contains(raw, "TestErrorTrackingReportsPanicsAnd5xxOnceWithoutSecrets.func") {
		t.Errorf("panic event without one exception and the stack of the panic: %v", pe["exception"])
	}
	for _, secret := range []string{secretToken, secretEmail, secretPass, "Bearer", "session="} {
		if strings.Contains(raw, secret) {
			t.Errorf("a report carries %q", secret)
		}
	}
}

// TestErrorTrackingFastHTTPRedactsTokensAndIsRateLimited: on the
// fasthttp middleware (edge, origin) a 5xx is reported with the playback
// token cut out of the route, and past the burst reports are dropped and
// counted instead of sent.
func TestErrorTrackingFastHTTPRedactsTokensAndIsRateLimited(t *testing.T) {
	sentry := newSentryServer(t)
	logs := &testrun.LockedBuffer{}
	o := New("edge", slog.New(slog.NewJSONHandler(logs, nil)))
	flush, err := o.TrackErrors(ErrorTracking{DSN: "http://publickey@" + sentry.addr + "/42", Burst: 3, Every: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: o.FastMiddleware(func(ctx *fasthttp.RequestCtx) {
		if strings.HasSuffix(string(ctx.Path()), "/panic") {
			panic("boom")
		}
		ctx.SetStatusCode(fasthttp.StatusBadGateway)
	})}
	go srv.Serve(ln)
	defer srv.Shutdown()
	for i := range 5 {
		path := "/t/" + secretToken + "/artists/1/a.mp4"
		if i == 0 {
			path = "/t/" + secretToken + "/panic"
		}
		res, err := http.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	flush(5 * time.Second)
	evs, raw := sentry.events()
	if len(evs) != 3 {
		t.Fatalf("%d events, want the burst of 3:\n%s", len(evs), raw)
	}
	if strings.Contains(raw, secretToken) {
		t.Errorf("a report carries the playback token:\n%s", raw)
	}
	if strings.Contains(logs.String(), secretToken) || !strings.Contains(logs.String(), `"path":"/t/-/artists/1/a.mp4"`) {
		t.Errorf("the 5xx log lines carry the token, or no path:\n%s", logs)
	}
	routes := map[any]bool{}
	for _, ev := range evs {
		routes[tagsOf(ev)["route"]] = true
	}
	if !routes["/t/-/panic"] || !routes["/t/-/artists/1/a.mp4"] {
		t.Errorf("routes %v, want the token cut out", routes)
	}
	var m bytes.Buffer
	o.WriteMetrics(&m)
	if !strings.Contains(m.String(), `riff_error_reports_dropped_total{component="edge"} 2`) {
		t.Errorf("dropped reports not counted:\n%s", m.String())
	}
}

func TestTrackErrorsRefusesABadDSN(t *testing.T) {
	o := New("test", slog.New(slog.NewJSONHandler(io.Discard, nil)))
	for _, dsn := range []string{"not a url", "ftp://k@h/1", "https://host/1"} {
		if _, err := o.TrackErrors(ErrorTracking{DSN: dsn}); err == nil {
			t.Errorf("DSN %q accepted", dsn)
		}
	}
	flush, err := o.TrackErrors(ErrorTracking{})
	if err != nil || o.errs != nil {
		t.Fatalf("empty DSN: %v, tracking on %v", err, o.errs != nil)
	}
	flush(time.Millisecond)
}

func TestRedactPath(t *testing.T) {
	for in, want := range map[string]string{
		"/t/abc.def.ghi/artists/1/x.mp4": "/t/-/artists/1/x.mp4",
		"/t/abc":                         "/t/-",
		"/artists/1/x.mp4":               "/artists/1/x.mp4",
		"/songs/1":                       "/songs/1",
	} {
		if got := RedactPath(in); got != want {
			t.Errorf("RedactPath(%q) = %q, want %q", in, got, want)
		}
	}
}
