package obs

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/getsentry/sentry-go"
)

// Error tracking.
//
// With a DSN, every panic and every 5xx answer is reported once to a server
// speaking the Sentry protocol (Sentry, or a self-hosted compatible such as
// GlitchTip), through the Sentry SDK. An event carries the component, the
// route (the path with any playback token cut out), the method, the status,
// the request id and the user id a handler set with SetUser — never
// headers, query strings, bodies, tokens, passwords or email addresses; a
// last scrub removes anything shaped like a JWT or an email address from
// the texts (a panic's value may quote its input). Events are grouped by
// component, route and status (or panic). A token bucket (Burst events, one
// more every Every) keeps an outage from flooding the tracker; what it
// refuses is counted in riff_error_reports_dropped_total{component}.

// ErrorTracking configures error reporting (see TrackErrors).
type ErrorTracking struct {
	// DSN of the project (https://KEY@HOST/PROJECT); empty: off.
	DSN string
	// Environment, e.g. "production" or "staging".
	Environment string
	// Release; empty: riff@ the VCS revision the binary was built from.
	Release string
	// Burst and Every bound the events sent: at most Burst at once, then
	// one per Every. Zero: 20 and 6 s (10 a minute).
	Burst int
	Every time.Duration
}

// Check reports a DSN that cannot be one (so that flag parsing refuses it
// before anything starts); the empty DSN (off) is fine.
func (et ErrorTracking) Check() error {
	if et.DSN == "" {
		return nil
	}
	if u, err := url.Parse(et.DSN); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User == nil || u.Host == "" {
		return fmt.Errorf("-sentry-dsn %q: want https://KEY@HOST/PROJECT", redactDSN(et.DSN))
	}
	return nil
}

// errorTracker sends events; nil when error tracking is off.
type errorTracker struct {
	client *sentry.Client
	bucket bucket
}

// TrackErrors turns error reporting on for this Obs (the middleware then
// reports panics and 5xx answers; ReportError reports other failures). It
// returns a flush function to call at shutdown: it waits up to timeout for
// queued events. With an empty DSN it does nothing and flush is a no-op.
func (o *Obs) TrackErrors(cfg ErrorTracking) (flush func(timeout time.Duration), err error) {
	if cfg.DSN == "" {
		return func(time.Duration) {}, nil
	}
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	if cfg.Release == "" {
		cfg.Release = buildRelease()
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 20
	}
	if cfg.Every <= 0 {
		cfg.Every = 6 * time.Second
	}
	client, err := sentry.NewClient(sentry.ClientOptions{
		Dsn:            cfg.DSN,
		Release:        cfg.Release,
		Environment:    cfg.Environment,
		SendDefaultPII: false,
		BeforeSend:     scrubEvent,
		// The SDK's own breadcrumbs and request capture stay off: an event
		// holds only what report puts in it.
		MaxBreadcrumbs: -1,
		// The plain transport: its Flush waits for every queued event
		// (the telemetry buffer's lost the last of a burst in tests).
		DisableTelemetryBuffer: true,
	})
	if err != nil {
		return nil, fmt.Errorf("error tracking: %w", err)
	}
	o.errs = &errorTracker{client: client, bucket: bucket{burst: float64(cfg.Burst), every: cfg.Every, tokens: float64(cfg.Burst)}}
	o.dropped = o.Metrics.NewCounter(fmt.Sprintf(`riff_error_reports_dropped_total{component=%q}`, o.Component))
	return func(timeout time.Duration) { client.Flush(timeout) }, nil
}

// Failure is what ReportError and the middleware know about one failure.
type Failure struct {
	Route  string // path or job stage, without secrets
	Method string
	Status int
	Panic  any               // the recovered value, for a panic
	Err    error             // the error, for a failed job or call
	Tags   map[string]string // more tags, e.g. song_id and stage for a job
}

// ReportError reports a failure that is not an HTTP answer (a job that
// failed for good, a purge that cannot be delivered) once, with ctx's
// request id and user id when it has them. A no-op when error tracking is
// off.
func (o *Obs) ReportError(ctx context.Context, f Failure) {
	if o.errs == nil {
		return
	}
	o.report(ctx, f)
}

// report sends one event, unless the bucket is empty.
func (o *Obs) report(ctx context.Context, f Failure) {
	if !o.errs.bucket.take(time.Now()) {
		o.dropped.Inc()
		return
	}
	hub := sentry.NewHub(o.errs.client, sentry.NewScope())
	hub.ConfigureScope(func(s *sentry.Scope) {
		s.SetTag("component", o.Component)
		if f.Route != "" {
			s.SetTag("route", f.Route)
		}
		if f.Method != "" {
			s.SetTag("method", f.Method)
		}
		if f.Status != 0 {
			s.SetTag("status", fmt.Sprint(f.Status))
		}
		if id := RequestID(ctx); id != "" {
			s.SetTag("request_id", id)
		}
		if sc, ok := traceIDs(ctx); ok {
			s.SetTag("trace_id", sc.TraceID().String())
		}
		if u := userOf(ctx); u != "" {
			s.SetUser(sentry.User{ID: u})
		}
		for k, v := range f.Tags {
			s.SetTag(k, v)
		}
		kind := "error"
		switch {
		case f.Panic != nil:
			kind = "panic"
		case f.Status != 0:
			kind = fmt.Sprint(f.Status)
		}
		s.SetFingerprint([]string{o.Component, f.Route, kind})
		s.SetLevel(sentry.LevelError)
	})
	switch {
	case f.Panic != nil:
		// Called from the middleware's deferred recover, the stack still
		// holds the frames that panicked.
		ev := sentry.NewEvent()
		ev.Level = sentry.LevelError
		ev.Exception = []sentry.Exception{{Type: "panic", Value: fmt.Sprint(f.Panic), Stacktrace: sentry.NewStacktrace()}}
		hub.CaptureEvent(ev)
	case f.Err != nil:
		hub.CaptureException(f.Err)
	default:
		hub.CaptureMessage(fmt.Sprintf("%s %s answered %d", f.Method, f.Route, f.Status))
	}
}

// SetUser records the authenticated user's id for the request ctx belongs
// to, so that an error report of that request names the user (by id only).
// A no-op outside a request of the net/http middleware.
func SetUser(ctx context.Context, id string) {
	if h, ok := ctx.Value(userKey{}).(*userHolder); ok {
		h.mu.Lock()
		h.id = id
		h.mu.Unlock()
	}
}

type userKey struct{}

// userHolder is put in the request's context by the middleware; handlers
// fill it in (SetUser) after the middleware has passed the context down.
type userHolder struct {
	mu sync.Mutex
	id string
}

func userOf(ctx context.Context) string {
	if h, ok := ctx.Value(userKey{}).(*userHolder); ok {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.id
	}
	return ""
}

// bucket is a token bucket: burst tokens, one more every every.
type bucket struct {
	mu     sync.Mutex
	burst  float64
	every  time.Duration
	tokens float64
	last   time.Time
}

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+float64(now.Sub(b.last))/float64(b.every))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// RedactPath returns path with the token of a playback URL
// (/t/{token}/key) replaced by "-": the route an error report may carry.
func RedactPath(path string) string {
	rest, ok := strings.CutPrefix(path, "/t/")
	if !ok {
		return path
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return "/t/-" + rest[i:]
	}
	return "/t/-"
}

var (
	jwtShape   = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`)
	emailShape = regexp.MustCompile(`[^\s"'<>@,;:]+@[^\s"'<>@,;:]+\.[A-Za-z]{2,}`)
)

// scrubEvent is the last line of defence: the event keeps no request, no
// breadcrumbs and no user but its id, and texts lose anything shaped like
// a token or an email address.
func scrubEvent(ev *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	ev.Request = nil
	ev.Breadcrumbs = nil
	ev.User = sentry.User{ID: ev.User.ID}
	ev.Message = scrubText(ev.Message)
	for i := range ev.Exception {
		ev.Exception[i].Value = scrubText(ev.Exception[i].Value)
		if st := ev.Exception[i].Stacktrace; st != nil {
			for j := range st.Frames {
				st.Frames[j].Vars = nil
			}
		}
	}
	return ev
}

func scrubText(s string) string {
	s = jwtShape.ReplaceAllString(s, "[token]")
	return emailShape.ReplaceAllString(s, "[email]")
}

// redactDSN hides the key of a DSN in an error message.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		u.User = url.User("-")
		return u.String()
	}
	return "(unparsable)"
}

// buildRelease names the release after the VCS revision the binary was
// built from ("riff@0123abcd", "-dirty" when modified), else "riff@dev".
func buildRelease() string {
	rev, dirty := "dev", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value[:min(12, len(s.Value))]
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
	}
	return "riff@" + rev + dirty
}
