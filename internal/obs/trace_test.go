package obs

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"riff/internal/testrun"
)

// startTraced returns an Obs for component exporting every trace to rcv,
// and its shutdown (which flushes).
func startTraced(t *testing.T, component string, rcv *testrun.OTLPReceiver, logs io.Writer) (*Obs, func()) {
	t.Helper()
	logger, _ := NewLogger(logs, "info")
	o := New(component, logger)
	stop, err := o.StartTracing(context.Background(), Tracing{Endpoint: rcv.URL, Ratio: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Tracing() {
		t.Fatal("tracing off with an endpoint")
	}
	return o, func() {
		if err := stop(context.Background()); err != nil {
			t.Errorf("stopping the tracer: %v", err)
		}
	}
}

func serveFast(t *testing.T, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown() })
	return "http://" + ln.Addr().String()
}

// TestTraceFollowsARequestAcrossDaemons: an edge-like fasthttp server calls
// an origin-like one with traceparent; the exported spans form one trace,
// edge server span → its child → origin server span → its child, with the
// playback token never in a span.
func TestTraceFollowsARequestAcrossDaemons(t *testing.T) {
	rcv := testrun.NewOTLPReceiver(t)
	edgeLogs := &testrun.LockedBuffer{}
	edge, stopEdge := startTraced(t, "edge", rcv, edgeLogs)
	origin, stopOrigin := startTraced(t, "origin", rcv, io.Discard)

	originURL := serveFast(t, origin.FastMiddleware(func(ctx *fasthttp.RequestCtx) {
		_, span := origin.StartSpan(SpanContext(ctx), "blob get")
		span.End()
		ctx.SetBodyString("media")
	}))
	client := &fasthttp.Client{}
	edgeURL := serveFast(t, edge.FastMiddleware(func(ctx *fasthttp.RequestCtx) {
		sctx, span := edge.StartSpan(SpanContext(ctx), "origin fetch")
		req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(res)
		req.SetRequestURI(originURL + "/artists/1/a.mp4")
		edge.InjectFast(sctx, &req.Header)
		err := client.Do(req, res)
		EndSpan(span, err)
		edge.Logger.InfoContext(ctx, "fetched")
		ctx.SetBody(res.Body())
	}))
	res, err := http.Get(edgeURL + "/t/" + secretToken + "/artists/1/a.mp4")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	stopEdge()
	stopOrigin()

	byName := map[string]testrun.Span{}
	for _, s := range rcv.Spans() {
		byName[s.Service+" "+s.Name] = s
		if strings.Contains(s.Name, secretToken) || strings.Contains(s.Attrs["http.route"], secretToken) {
			t.Errorf("span %q carries the token", s.Name)
		}
	}
	es, ef := byName["riff-edge GET /t/-/artists/1/a.mp4"], byName["riff-edge origin fetch"]
	os, ob := byName["riff-origin GET /artists/1/a.mp4"], byName["riff-origin blob get"]
	if es.SpanID == "" || ef.SpanID == "" || os.SpanID == "" || ob.SpanID == "" {
		t.Fatalf("spans %v, want the edge's and the origin's server spans and children", byName)
	}
	if es.ParentID != "" || ef.ParentID != es.SpanID || os.ParentID != ef.SpanID || ob.ParentID != os.SpanID {
		t.Errorf("parents: edge %q, fetch %q→%q, origin %q→%q, blob %q→%q", es.ParentID,
			ef.ParentID, es.SpanID, os.ParentID, ef.SpanID, ob.ParentID, os.SpanID)
	}
	for _, s := range []testrun.Span{ef, os, ob} {
		if s.TraceID != es.TraceID {
			t.Errorf("span %s in trace %s, want %s", s.Name, s.TraceID, es.TraceID)
		}
	}
	if es.Kind != "SPAN_KIND_SERVER" || os.Kind != "SPAN_KIND_SERVER" {
		t.Errorf("server span kinds %s %s", es.Kind, os.Kind)
	}
	if !strings.Contains(edgeLogs.String(), `"trace_id":"`+es.TraceID+`"`) {
		t.Errorf("the edge's log line lacks trace_id %s:\n%s", es.TraceID, edgeLogs)
	}
}

// TestTraceContinuesTheCallersTrace: the net/http middleware makes the
// server span a child of the caller's traceparent, names it by the mux
// pattern, and marks a 5xx as an error.
func TestTraceContinuesTheCallersTrace(t *testing.T) {
	rcv := testrun.NewOTLPReceiver(t)
	o, stop := startTraced(t, "catalogd", rcv, io.Discard)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /songs/{id}", func(w http.ResponseWriter, r *http.Request) {
		_, span := o.StartSpan(r.Context(), "store.SongByID")
		span.End()
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	req, _ := http.NewRequest("GET", serveHTTP(t, o.Middleware(mux))+"/songs/12", nil)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	stop()
	var server, child testrun.Span
	for _, s := range rcv.Spans() {
		switch s.Name {
		case "GET /songs/{id}":
			server = s
		case "store.SongByID":
			child = s
		}
	}
	if server.TraceID != traceID || server.ParentID != parentID || !server.Error {
		t.Errorf("server span %+v, want trace %s, parent %s, error status", server, traceID, parentID)
	}
	if child.ParentID != server.SpanID || child.TraceID != traceID {
		t.Errorf("child span %+v, want a child of %s", child, server.SpanID)
	}
}

// TestTracingOffCostsNothing: without an endpoint nothing is set up, and
// StartSpan and the fasthttp middleware allocate nothing.
func TestTracingOffCostsNothing(t *testing.T) {
	o := New("edge", slog.New(slog.DiscardHandler))
	stop, err := o.StartTracing(context.Background(), Tracing{Ratio: 1})
	if err != nil || o.Tracing() {
		t.Fatalf("no endpoint: %v, tracing %v", err, o.Tracing())
	}
	stop(context.Background())
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() {
		c, span := o.StartSpan(ctx, "x")
		span.End()
		if c != ctx {
			t.Fatal("StartSpan changed the context with tracing off")
		}
	}); n != 0 {
		t.Errorf("StartSpan with tracing off: %v allocs", n)
	}
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_SAMPLER": "always_on"}
	tr := Tracing{Ratio: 0.5}
	if err := tr.Resolve(func(k string) string { return env[k] }); err != nil || tr.Endpoint != "http://collector:4318" || !tr.EnvSampler {
		t.Errorf("Resolve from OTEL_* = %+v, %v", tr, err)
	}
	for _, bad := range []Tracing{{Ratio: 1.5}, {Endpoint: "collector:4318", Ratio: 1}} {
		if _, err := o.StartTracing(context.Background(), bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestNewTracesSampledAtRatio: new traces (requests without traceparent,
// StartTrace) are sampled at Ratio, not Ratio² (one draw, not two), and a
// sampled caller's trace is always followed.
func TestNewTracesSampledAtRatio(t *testing.T) {
	o := New("catalogd", slog.New(slog.DiscardHandler))
	stop, err := o.StartTracing(context.Background(), Tracing{Endpoint: "http://127.0.0.1:9", Ratio: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	const n = 2000
	sampled := 0
	for range n {
		ctx, span := o.StartTrace(context.Background(), "purge delivery")
		if Sampled(ctx) {
			sampled++
			if _, child := o.StartSpan(ctx, "child"); !child.SpanContext().IsSampled() {
				t.Fatal("a sampled trace's child was left out")
			}
		}
		span.End()
	}
	if sampled < n*4/10 || sampled > n*6/10 {
		t.Errorf("%d of %d new traces sampled at ratio 0.5", sampled, n)
	}
}

// TestTelemetry: the shared flags resolve from the environment, a bad DSN
// is refused before anything starts, and StopTelemetry is idempotent and
// harmless without StartTelemetry.
func TestTelemetry(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	tel := TelemetryFlags(fs)
	if err := fs.Parse([]string{"-sentry-environment", "staging", "-trace-ratio", "0.5"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
	if err := tel.Resolve(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	want := Telemetry{Errors: ErrorTracking{Environment: "staging"}, Tracing: Tracing{Endpoint: "http://collector:4318", Ratio: 0.5}}
	if *tel != want {
		t.Errorf("Telemetry = %+v, want %+v", *tel, want)
	}
	bad := Telemetry{Errors: ErrorTracking{DSN: "not a dsn"}}
	if err := bad.Resolve(func(string) string { return "" }); err == nil {
		t.Error("bad DSN accepted")
	}
	o := New("origin", slog.New(slog.DiscardHandler))
	o.StopTelemetry()
	if err := o.StartTelemetry(context.Background(), Telemetry{Tracing: Tracing{Endpoint: "http://127.0.0.1:9", Ratio: 1}}); err != nil || !o.Tracing() {
		t.Fatalf("StartTelemetry = %v, tracing %v", err, o.Tracing())
	}
	o.StopTelemetry()
	o.StopTelemetry()
}
