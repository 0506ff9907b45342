package obs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// HeaderRequestID is the header that carries a request id in and out.
const HeaderRequestID = "X-Request-Id"

type ctxKey struct{}

// WithRequestID returns ctx carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// RequestID returns the request id carried by ctx, or "". It understands
// contexts built by WithRequestID and fasthttp request contexts that went
// through FastMiddleware.
func RequestID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	if fc, ok := ctx.(*fasthttp.RequestCtx); ok {
		return string(fc.Response.Header.Peek(HeaderRequestID))
	}
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// idSource makes request ids: a random per-instance prefix and a counter.
// Cheap enough for the edge's hot path, unique across instances in practice.
type idSource struct {
	prefix []byte
	n      atomic.Uint64
}

func newIDSource() *idSource {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms.
	p := make([]byte, 0, 13)
	p = hex.AppendEncode(p, b[:])
	return &idSource{prefix: append(p, '-')}
}

// appendID appends a fresh id to dst.
func (s *idSource) appendID(dst []byte) []byte {
	dst = append(dst, s.prefix...)
	return strconv.AppendUint(dst, s.n.Add(1), 36)
}

// validID reports whether an incoming id is safe to echo and log:
// 1 to 128 bytes of [A-Za-z0-9._:-].
func validID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// requestIDHandler adds request_id to records whose context carries one,
// and trace_id and span_id when the context has a span (tracing on).
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if ctx != nil {
		if sc, ok := traceIDs(ctx); ok {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}
