package obs

import (
	"context"
	"flag"
	"sync"
	"time"
)

// Telemetry is what a daemon's error-tracking and tracing flags ask for
// (every daemon has the same four: -sentry-dsn, -sentry-environment,
// -otlp-endpoint, -trace-ratio). Register them with TelemetryFlags, check
// them with Resolve while parsing flags (no side effects), turn them on
// with (*Obs).StartTelemetry when building the daemon, and flush them with
// (*Obs).StopTelemetry at the end of its shutdown.
type Telemetry struct {
	Errors  ErrorTracking
	Tracing Tracing
}

// TelemetryFlags registers the error-tracking and tracing flags on fs and
// returns what they will hold once fs is parsed.
func TelemetryFlags(fs *flag.FlagSet) *Telemetry {
	t := &Telemetry{}
	fs.StringVar(&t.Errors.DSN, "sentry-dsn", "", "error tracking `DSN` (Sentry protocol: Sentry, GlitchTip): panics and 5xx answers are reported; empty: off")
	fs.StringVar(&t.Errors.Environment, "sentry-environment", "production", "environment `name` on error reports")
	fs.StringVar(&t.Tracing.Endpoint, "otlp-endpoint", "", "OpenTelemetry collector `URL` (OTLP/HTTP, e.g. http://collector:4318) to export traces to; empty: OTEL_EXPORTER_OTLP_ENDPOINT, else off")
	fs.Float64Var(&t.Tracing.Ratio, "trace-ratio", 0.01, "share of new traces sampled, 0 to 1 (a sampled caller's traces are always followed)")
	return t
}

// Resolve checks the DSN and completes the tracing settings from the
// OTEL_* environment (see Tracing.Resolve). It starts nothing.
func (t *Telemetry) Resolve(getenv func(string) string) error {
	if err := t.Errors.Check(); err != nil {
		return err
	}
	return t.Tracing.Resolve(getenv)
}

// telemetryFlushTimeout bounds each of StopTelemetry's flushes (error
// reports, then spans): shutdown must not hang on an unreachable
// collector.
const telemetryFlushTimeout = 2 * time.Second

// StartTelemetry turns on the error tracking and tracing t asks for (each
// stays off when its endpoint is empty); call it before serving. On error
// nothing was started.
func (o *Obs) StartTelemetry(ctx context.Context, t Telemetry) error {
	flush, err := o.TrackErrors(t.Errors)
	if err != nil {
		return err
	}
	stopTracing, err := o.StartTracing(ctx, t.Tracing)
	if err != nil {
		return err
	}
	o.stopTelemetry = sync.OnceFunc(func() {
		flush(telemetryFlushTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), telemetryFlushTimeout)
		defer cancel()
		if err := stopTracing(ctx); err != nil {
			o.Logger.Warn("flushing traces", "err", err)
		}
	})
	return nil
}

// StopTelemetry sends the error reports and spans still queued (up to two
// seconds each) and stops the span exporter: the last step of a daemon's
// shutdown. It is idempotent and does nothing when StartTelemetry was not
// called.
func (o *Obs) StopTelemetry() {
	if o.stopTelemetry != nil {
		o.stopTelemetry()
	}
}
