// Package obs gives every Riff daemon the same observability: JSON logs
// (log/slog) that carry the request id, Prometheus metrics through
// VictoriaMetrics/metrics (one Set per server instance, never the global
// set), health endpoints (/healthz alive, /readyz dependencies), panic
// recovery and error counters by kind, latency histograms with Prometheus
// buckets (Latency), error tracking over the Sentry protocol (errors.go)
// and OpenTelemetry tracing (trace.go); Telemetry (telemetry.go) is the
// flags of both that every daemon shares, started and flushed in one call
// each. Middleware exists for both net/http (catalogd) and fasthttp
// (origin, edge).
//
// An Obs is safe for concurrent use once built. Register readiness checks,
// error tracking and tracing before serving.
//
// obs must not import any riff package: every daemon imports it.
package obs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Obs bundles the logger, metrics and health checks of one server instance.
type Obs struct {
	Component string
	Logger    *slog.Logger
	Metrics   *metrics.Set

	mu      sync.RWMutex
	checks  []check
	details []detail

	panics   *metrics.Counter
	requests requestCounters

	errs    *errorTracker // nil: error tracking off (see TrackErrors)
	dropped *metrics.Counter
	tracer  *tracer // nil: tracing off (see StartTracing)
	// stopTelemetry flushes what StartTelemetry started (nil: not called).
	stopTelemetry func()
	latency       *metrics.PrometheusHistogram
}

type check struct {
	name string
	fn   func(context.Context) error
}

type detail struct {
	name string
	fn   func() any
}

// New returns an Obs for component (e.g. "edge"). logger must not be nil;
// every line it writes gets component=<component>.
func New(component string, logger *slog.Logger) *Obs {
	set := metrics.NewSet()
	o := &Obs{
		Component: component,
		Logger:    logger.With("component", component),
		Metrics:   set,
	}
	o.panics = set.NewCounter(fmt.Sprintf(`riff_panics_total{component=%q}`, component))
	o.latency = Latency(set, fmt.Sprintf(`riff_http_request_duration_seconds{component=%q}`, component))
	o.requests.init(set, component)
	return o
}

// Latency returns set's latency histogram called name (created on first
// use). Every Riff latency histogram is a Prometheus histogram (cumulative
// `le` buckets, so histogram_quantile works in Prometheus and every
// compatible store) with the same bounds: 0.5 ms to 10 s, dense below 50 ms
// where an edge hit and a catalog read live, so that a p99 moving from 2 to
// 8 ms shows.
func Latency(set *metrics.Set, name string) *metrics.PrometheusHistogram {
	return set.GetOrCreatePrometheusHistogramExt(name, []float64{
		.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10})
}

// NewLogger returns a JSON logger writing to w at level ("debug", "info",
// "warn", "error"). Records logged with a context that carries a request id
// (see WithRequestID and the middleware) get a request_id attribute.
func NewLogger(w io.Writer, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lv})
	return slog.New(requestIDHandler{h}), nil
}

// CountError counts one error of kind (e.g. "not_found", "origin_timeout")
// in riff_errors_total{component,kind}.
func (o *Obs) CountError(kind string) {
	o.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_errors_total{component=%q,kind=%q}`, o.Component, kind)).Inc()
}

// AddCheck registers a readiness check run by /readyz. name appears in the
// 503 answer when fn fails. Checks run with a short deadline.
func (o *Obs) AddCheck(name string, fn func(context.Context) error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.checks = append(o.checks, check{name, fn})
}

// AddDetail registers a readiness detail: fn's value (marshalled as JSON)
// appears under "detail" → name in every /readyz answer, ready or not. Keep
// it to numbers an operator acts on (queue depths, ages, lagging peers),
// never internal error text. fn must be fast and safe for concurrent use.
func (o *Obs) AddDetail(name string, fn func() any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.details = append(o.details, detail{name, fn})
}

// Details returns the current value of every readiness detail by name
// (nil when none are registered).
func (o *Obs) Details() map[string]any {
	o.mu.RLock()
	details := slices.Clone(o.details)
	o.mu.RUnlock()
	if len(details) == 0 {
		return nil
	}
	m := make(map[string]any, len(details))
	for _, d := range details {
		m[d.name] = d.fn()
	}
	return m
}

// Ready runs every check and returns the names of those that failed
// (sorted), with their errors joined.
func (o *Obs) Ready(ctx context.Context) (failed []string, err error) {
	o.mu.RLock()
	checks := slices.Clone(o.checks)
	o.mu.RUnlock()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var errs []string
	for _, c := range checks {
		if cerr := c.fn(ctx); cerr != nil {
			failed = append(failed, c.name)
			errs = append(errs, c.name+": "+cerr.Error())
		}
	}
	slices.Sort(failed)
	if len(errs) > 0 {
		err = fmt.Errorf("not ready: %s", strings.Join(errs, "; "))
	}
	return failed, err
}

// WriteMetrics writes this instance's metrics and the process metrics in
// Prometheus text format.
func (o *Obs) WriteMetrics(w io.Writer) {
	o.Metrics.WritePrometheus(w)
	metrics.WriteProcessMetrics(w)
}

// observe records one finished request.
func (o *Obs) observe(status int, start time.Time) {
	o.requests.inc(status)
	o.latency.UpdateDuration(start)
}

// requestCounters holds riff_http_requests_total by status code. Counters
// are created on first use; after that inc is one atomic load and add.
type requestCounters struct {
	set       *metrics.Set
	component string
	mu        sync.Mutex // serialises creation only
	byCode    [600]atomic.Pointer[metrics.Counter]
}

func (rc *requestCounters) init(set *metrics.Set, component string) {
	rc.set, rc.component = set, component
}

func (rc *requestCounters) inc(code int) {
	if code < 100 || code >= 600 {
		code = 599
	}
	c := rc.byCode[code].Load()
	if c == nil {
		rc.mu.Lock()
		c = rc.set.GetOrCreateCounter(fmt.Sprintf(`riff_http_requests_total{component=%q,code="%d"}`, rc.component, code))
		rc.byCode[code].Store(c)
		rc.mu.Unlock()
	}
	c.Inc()
}
