package obs

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Middleware wraps a net/http handler: it takes the incoming X-Request-Id
// (when well formed) or makes one, echoes it in the response, puts it in the
// request context for logging, recovers panics (logged with their stack,
// counted, answered 500 when nothing was written yet), counts requests by
// status and logs one line per request.
func (o *Obs) Middleware(next http.Handler) http.Handler {
	ids := newIDSource()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(HeaderRequestID)
		if !validID([]byte(id)) {
			id = string(ids.appendID(nil))
		}
		w.Header().Set(HeaderRequestID, id)
		ctx := WithRequestID(r.Context(), id)
		if o.errs != nil {
			ctx = context.WithValue(ctx, userKey{}, &userHolder{})
		}
		var span trace.Span
		if o.tracer != nil {
			ctx, span = o.tracer.startServer(ctx, r.Header, r.Method)
		}
		sw := &statusWriter{ResponseWriter: w}
		inner := r.WithContext(ctx)
		defer func() {
			p := recover()
			if p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				o.panics.Inc()
				o.Logger.ErrorContext(ctx, "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if !sw.wroteHeader {
					writeInternalError(sw)
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if span != nil {
				endServer(span, inner.Pattern, status)
			}
			if o.errs != nil && (p != nil || status >= 500) {
				// The mux sets the matched pattern on the request it was
				// given: "GET /songs/{id}", ids not included.
				route := inner.Pattern
				if route == "" {
					route = RedactPath(r.URL.Path)
				}
				o.report(ctx, Failure{Route: route, Method: r.Method, Status: status, Panic: p})
			}
			o.observe(status, start)
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			o.Logger.LogAttrs(ctx, level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
				slog.String("remote", r.RemoteAddr))
		}()
		next.ServeHTTP(sw, inner)
	})
}

// writeInternalError answers a bare RFC 9457 problem for a recovered panic.
func writeInternalError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write([]byte(`{"type":"about:blank","title":"Internal Server Error","status":500}` + "\n"))
}

// statusWriter remembers the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	bytes       int64
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader && code >= 200 {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Handler serves /metrics, /healthz and /readyz for net/http servers. Mount
// it on the admin listener, or on the main mux for those three paths.
func (o *Obs) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		o.WriteMetrics(w)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		status, body := o.readyBody(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	})
	return mux
}

// readyBody runs the checks and renders the /readyz answer: the status,
// the names of failed checks and the registered details (see AddDetail).
func (o *Obs) readyBody(ctx context.Context) (int, []byte) {
	failed, err := o.Ready(ctx)
	answer := struct {
		Status string         `json:"status"`
		Failed []string       `json:"failed,omitempty"`
		Detail map[string]any `json:"detail,omitempty"`
	}{"ready", failed, o.Details()}
	status := http.StatusOK
	if err != nil {
		o.Logger.WarnContext(ctx, "readiness check failed", "err", err)
		answer.Status, status = "unavailable", http.StatusServiceUnavailable
	}
	b, merr := json.Marshal(answer)
	if merr != nil {
		o.Logger.ErrorContext(ctx, "readiness detail", "err", merr)
		answer.Detail = nil
		b, _ = json.Marshal(answer)
	}
	return status, append(b, '\n')
}
