package obs

import (
	"bytes"
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// FastMiddleware wraps a fasthttp handler with what Middleware does for
// net/http, tuned for the hot path: taking or making the request id costs
// no allocation, and only 5xx answers and panics are logged (a per-request
// access log belongs in front of the edge, not in it).
func (o *Obs) FastMiddleware(next fasthttp.RequestHandler) fasthttp.RequestHandler {
	ids := newIDSource()
	return func(ctx *fasthttp.RequestCtx) {
		start := time.Now()
		if id := ctx.Request.Header.Peek(HeaderRequestID); validID(id) {
			ctx.Response.Header.SetBytesV(HeaderRequestID, id)
		} else {
			var buf [48]byte
			ctx.Response.Header.SetBytesV(HeaderRequestID, ids.appendID(buf[:0]))
		}
		var span trace.Span
		if o.tracer != nil {
			if sctx, sp := o.tracer.startFast(ctx); sp != nil {
				ctx.SetUserValue(spanCtxKey{}, sctx)
				span = sp
			}
		}
		defer func() {
			p := recover()
			if p != nil {
				o.panics.Inc()
				o.Logger.ErrorContext(ctx, "panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()),
					"method", string(ctx.Method()), "path", RedactPath(string(ctx.Path())))
				ctx.ResetBody()
				ctx.Response.Header.SetContentType("application/problem+json")
				ctx.SetStatusCode(fasthttp.StatusInternalServerError)
				ctx.SetBodyString(`{"type":"about:blank","title":"Internal Server Error","status":500}` + "\n")
			}
			status := ctx.Response.StatusCode()
			o.observe(status, start)
			if span != nil {
				if v := ctx.Response.Header.Peek("X-Cache"); len(v) > 0 {
					span.SetAttributes(attribute.String("cache.status", string(v)))
				}
				endServer(span, "", status)
			}
			if status >= 500 {
				o.Logger.ErrorContext(ctx, "request", "method", string(ctx.Method()), "path", RedactPath(string(ctx.Path())),
					"status", status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
				if o.errs != nil {
					o.report(ctx, Failure{Route: RedactPath(string(ctx.Path())),
						Method: string(ctx.Method()), Status: status, Panic: p})
				}
			}
		}()
		next(ctx)
	}
}

// TraceFast runs next, a handler that FastMiddleware does not wrap (an
// admin request such as an edge's purge), in a server span named name when
// the request carries a caller's traceparent: the span joins the caller's
// trace. Admin requests start no trace of their own; with tracing off, or
// without traceparent, next runs alone.
func (o *Obs) TraceFast(ctx *fasthttp.RequestCtx, name string, next fasthttp.RequestHandler) {
	if o.tracer == nil || len(ctx.Request.Header.Peek("Traceparent")) == 0 {
		next(ctx)
		return
	}
	sctx := o.tracer.prop.Extract(context.Background(), fastCarrier{&ctx.Request.Header})
	sctx, span := o.tracer.t.Start(sctx, name, trace.WithSpanKind(trace.SpanKindServer))
	ctx.SetUserValue(spanCtxKey{}, sctx)
	defer func() { endServer(span, "", ctx.Response.StatusCode()) }()
	next(ctx)
}

var (
	pathMetrics = []byte("/metrics")
	pathHealthz = []byte("/healthz")
	pathReadyz  = []byte("/readyz")
)

// FastAdmin answers /metrics, /healthz and /readyz on a fasthttp server and
// reports whether it did. Other paths are left to the caller.
func (o *Obs) FastAdmin(ctx *fasthttp.RequestCtx) bool {
	if !ctx.IsGet() && !ctx.IsHead() {
		return false
	}
	switch path := ctx.Path(); {
	case bytes.Equal(path, pathMetrics):
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		o.WriteMetrics(ctx)
	case bytes.Equal(path, pathHealthz):
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}` + "\n")
	case bytes.Equal(path, pathReadyz):
		// The checks get a context that keeps the request's values (its
		// request id) but not the pooled RequestCtx's Done channel: a
		// context derived from that starts a goroutine that may read the
		// RequestCtx after fasthttp has reused it (a data race).
		status, body := o.readyBody(context.WithoutCancel(ctx))
		ctx.SetContentType("application/json")
		ctx.SetStatusCode(status)
		ctx.SetBody(body)
	default:
		return false
	}
	return true
}
