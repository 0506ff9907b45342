package obs

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing.
//
// With an OTLP endpoint, each daemon exports spans over OTLP/HTTP
// (protobuf) through the OpenTelemetry SDK: one server span per request
// (the middleware; its parent comes from the request's W3C traceparent
// header), child spans made with StartSpan, and traceparent injected into
// the requests a daemon makes (Inject, InjectFast), so that one trace
// follows a segment from the edge to the origin and an upload from POST
// /songs through its job. New traces are sampled at Ratio (parent-based: a
// sampled parent's children are always kept). The standard OTEL_*
// environment variables of the exporter and the sampler are honoured.
//
// Off (no endpoint), nothing is set up: the middleware checks one pointer
// and StartSpan returns the context it was given, so the edge's hit path
// pays nothing.

// Tracing configures span export (see StartTracing).
type Tracing struct {
	// Endpoint is the OTLP/HTTP collector URL, e.g. http://collector:4318
	// (/v1/traces is added when the URL has no path). Empty: the
	// environment's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
	// OTEL_EXPORTER_OTLP_ENDPOINT, else tracing is off.
	Endpoint string
	// Ratio of new traces sampled, 0 to 1.
	Ratio float64
	// EnvSampler: OTEL_TRACES_SAMPLER is set, and the SDK's sampler from
	// the environment is used instead of Ratio.
	EnvSampler bool
}

// Resolve completes t from the OTEL_* environment (read with getenv): the
// endpoint when none was given, and whether the sampler comes from the
// environment. Then it checks t.
func (t *Tracing) Resolve(getenv func(string) string) error {
	if t.Endpoint == "" {
		if e := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
			t.Endpoint = e // a full URL, path included
		} else {
			t.Endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		}
	}
	t.EnvSampler = getenv("OTEL_TRACES_SAMPLER") != ""
	return t.Check()
}

// Check reports an endpoint or ratio that cannot work (so that flag
// parsing refuses it before anything starts).
func (t Tracing) Check() error {
	if t.Ratio < 0 || t.Ratio > 1 {
		return fmt.Errorf("-trace-ratio %v: want 0 to 1", t.Ratio)
	}
	if t.Endpoint == "" {
		return nil
	}
	if u, err := url.Parse(t.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-otlp-endpoint %q: want http(s)://HOST:PORT", t.Endpoint)
	}
	return nil
}

// tracer is set when tracing is on.
type tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
	// ratio is the head sampling of requests that arrive without a
	// traceparent, decided before anything is allocated (always: the
	// sampler comes from OTEL_TRACES_SAMPLER, and the SDK decides).
	ratio  float64
	always bool
}

// skip reports whether a request that carries traceparent (empty: none)
// is left untraced: no caller's trace to continue, and not drawn by the
// head sampling. An untraced request costs one random number.
func (t *tracer) skip(traceparent []byte) bool {
	return len(traceparent) == 0 && !t.always && rand.Float64() >= t.ratio
}

// StartTracing turns span export on for this Obs (cfg as Resolve left
// it; the exporter also reads its other OTEL_* settings, such as headers,
// from the process environment). It returns a function that flushes and
// stops the exporter, to call at shutdown; without an endpoint tracing
// stays off and it does nothing.
func (o *Obs) StartTracing(ctx context.Context, cfg Tracing) (shutdown func(context.Context) error, err error) {
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	endpoint := cfg.Endpoint
	if endpoint == "" {
		return func(context.Context) error { return nil }, nil
	}
	if u, _ := url.Parse(endpoint); u.Path == "" || u.Path == "/" {
		endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	tpOpts := []sdktrace.TracerProviderOption{
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(
			attribute.String("service.name", "riff-"+o.Component),
			attribute.String("service.version", buildRelease()))),
	}
	if !cfg.EnvSampler {
		// New traces are drawn at Ratio before the SDK sees them (skip,
		// so an unsampled request allocates nothing); a second draw by a
		// ratio sampler here would sample Ratio² of them.
		tpOpts = append(tpOpts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	}
	tp := sdktrace.NewTracerProvider(tpOpts...)
	o.tracer = &tracer{t: tp.Tracer("riff/" + o.Component), prop: propagation.TraceContext{}, ratio: cfg.Ratio, always: cfg.EnvSampler}
	return tp.Shutdown, nil
}

// Tracing reports whether spans are exported (false for a nil Obs).
func (o *Obs) Tracing() bool { return o != nil && o.tracer != nil }

// StartSpan starts a child span of ctx's span named name when that span
// is sampled; otherwise (tracing off, ctx has no span or an unsampled one)
// it returns ctx and a span that does nothing, allocating nothing. Spans
// never start traces of their own: the request middleware does (head
// sampling), and background work continues a stored trace
// (ContinueTrace). For a fasthttp request context, pass SpanContext(ctx).
func (o *Obs) StartSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !o.Tracing() || !Sampled(ctx) {
		return ctx, trace.SpanFromContext(context.Background()) // the no-op span
	}
	return o.tracer.t.Start(ctx, name, trace.WithAttributes(attrs...))
}

// StartSpanAt is StartSpan for work that began at start, before its
// trace was known (a job's claim happens before the job's stored trace is
// read); End it with trace.WithTimestamp for an end in the past too.
func (o *Obs) StartSpanAt(ctx context.Context, name string, start time.Time, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !o.Tracing() || !Sampled(ctx) {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return o.tracer.t.Start(ctx, name, trace.WithTimestamp(start), trace.WithAttributes(attrs...))
}

// StartTrace starts the root span of a new trace for background work that
// no request asked for (a purge delivery), head-sampled at the configured
// ratio like a request without traceparent; the span is a client span (the
// work calls out). With tracing off, or when the draw leaves the trace out,
// it returns ctx and a span that does nothing.
func (o *Obs) StartTrace(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !o.Tracing() || o.tracer.skip(nil) {
		return ctx, trace.SpanFromContext(context.Background())
	}
	return o.tracer.t.Start(ctx, name, trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// Sampled reports whether ctx carries a sampled span (its children are
// recorded).
func Sampled(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).IsSampled()
}

// EndSpan ends span, marking it failed when err is not nil.
func EndSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Inject writes ctx's trace context (traceparent) into an outgoing
// net/http request's headers. A no-op with tracing off.
func (o *Obs) Inject(ctx context.Context, h http.Header) {
	if o.Tracing() {
		o.tracer.prop.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// InjectFast writes ctx's trace context into an outgoing fasthttp request.
func (o *Obs) InjectFast(ctx context.Context, h *fasthttp.RequestHeader) {
	if o.Tracing() {
		o.tracer.prop.Inject(ctx, fastCarrier{h})
	}
}

// TraceParent returns the W3C traceparent of ctx's span, "" when ctx has
// no sampled span: what work that continues later (a queued job) stores
// to continue the trace with ContinueTrace.
func TraceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(SpanContext(ctx))
	if !sc.IsValid() || !sc.IsSampled() {
		return ""
	}
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return c["traceparent"]
}

// ContinueTrace returns ctx carrying the remote parent that traceparent
// (from TraceParent) names, so that spans started from it join that trace;
// ctx itself when traceparent is empty or malformed.
func ContinueTrace(ctx context.Context, traceparent string) context.Context {
	if traceparent == "" {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{"traceparent": traceparent})
}

// spanCtxKey keys the span's context in a fasthttp RequestCtx's user
// values (a RequestCtx cannot carry an OpenTelemetry span itself).
type spanCtxKey struct{}

// SpanContext returns the context.Context that carries the server span of
// a fasthttp request (ctx is the RequestCtx or a context derived from it),
// for StartSpan and outgoing requests; ctx itself when tracing is off or
// ctx has no such span. The returned context has the span but not ctx's
// deadline.
func SpanContext(ctx context.Context) context.Context {
	if sc, ok := ctx.Value(spanCtxKey{}).(context.Context); ok {
		return sc
	}
	return ctx
}

// Detached returns the context that carries the server span of a fasthttp
// request (as SpanContext), or context.Background() when it has none:
// never the pooled RequestCtx, so work that outlives the handler may hold
// it.
func Detached(ctx context.Context) context.Context {
	if sc, ok := ctx.Value(spanCtxKey{}).(context.Context); ok {
		return sc
	}
	return context.Background()
}

// traceIDs returns the trace and span ids of ctx's span, for log lines.
func traceIDs(ctx context.Context) (trace.SpanContext, bool) {
	sc := trace.SpanContextFromContext(SpanContext(ctx))
	return sc, sc.IsValid()
}

// startServerSpan extracts the caller's trace context from a net/http
// request and starts the server span.
func (t *tracer) startServer(ctx context.Context, h http.Header, name string) (context.Context, trace.Span) {
	if t.skip([]byte(h.Get("Traceparent"))) {
		return ctx, nil
	}
	ctx = t.prop.Extract(ctx, propagation.HeaderCarrier(h))
	return t.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
}

// startFast extracts the caller's trace context from a fasthttp request
// and starts the server span, named by method and path (tokens cut out).
func (t *tracer) startFast(ctx *fasthttp.RequestCtx) (context.Context, trace.Span) {
	if t.skip(ctx.Request.Header.Peek("Traceparent")) {
		return nil, nil
	}
	sctx := t.prop.Extract(context.Background(), fastCarrier{&ctx.Request.Header})
	return t.t.Start(sctx, string(ctx.Method())+" "+RedactPath(string(ctx.Path())), trace.WithSpanKind(trace.SpanKindServer))
}

// endServer records the answer's status on the server span and ends it.
func endServer(span trace.Span, route string, status int) {
	if route != "" {
		span.SetName(route)
		span.SetAttributes(attribute.String("http.route", route))
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, strconv.Itoa(status))
	}
	span.End()
}

// fastCarrier adapts a fasthttp request header to the propagator.
type fastCarrier struct{ h *fasthttp.RequestHeader }

func (c fastCarrier) Get(key string) string { return string(c.h.Peek(key)) }
func (c fastCarrier) Set(key, value string) { c.h.Set(key, value) }
func (c fastCarrier) Keys() []string {
	var keys []string
	for k := range c.h.All() {
		keys = append(keys, string(k))
	}
	return keys
}
