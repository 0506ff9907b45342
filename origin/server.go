package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/httprange"
	"riff/internal/obs"
)

// HeaderSecret carries the shared secret edges send to the origin.
const HeaderSecret = "X-Riff-Origin-Secret"

// Cache-Control values.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cacheShort     = "public, max-age=60"
	cacheNone      = "no-store"
)

// ServerConfig tunes a Server. The zero value serves without a secret and
// with default timeouts.
type ServerConfig struct {
	// Secret, if set, must be sent by clients in the X-Riff-Origin-Secret
	// header; requests without it, or with another value, get 403.
	Secret string
	// Admin makes Handler also answer /metrics, /healthz and /readyz (when
	// no separate admin listener is used).
	Admin bool
	// StoreTimeout bounds a request's use of the store, from the first
	// call until the body has been read. Default 30s.
	StoreTimeout time.Duration
	// Fallback, when set, is another region's origin to read from when
	// the store does not have an object or fails (fallback.go).
	Fallback *Fallback
	// ReadTimeout, WriteTimeout and IdleTimeout configure the fasthttp
	// server Serve runs: reading a request, writing a whole response, and
	// keeping an idle keep-alive connection. Defaults 10s, 2m and 60s.
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// Server serves blob objects over HTTP. It is safe for concurrent use.
// NewServer has no side effects beyond registering a readiness check; Serve
// starts serving and Shutdown stops it.
type Server struct {
	obs       *obs.Obs
	store     blob.Store
	cfg       ServerConfig
	secretSum *[sha256.Size]byte // nil when no secret is required
	handler   fasthttp.RequestHandler
	srv       *fasthttp.Server
	bodies    sync.Pool // of *body

	sentBytes        *metrics.Counter
	getSeconds       *metrics.PrometheusHistogram
	statSeconds      *metrics.PrometheusHistogram
	storeTimeouts    *metrics.Counter
	storeUnavailable *metrics.Counter
	fallbackServed   *metrics.Counter
	fallbackFailed   *metrics.Counter
}

// NewServer returns a Server for store. It registers a readiness check named
// "blob" on o (a Stat that may find nothing, but must not fail otherwise).
func NewServer(o *obs.Obs, store blob.Store, cfg ServerConfig) *Server {
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = 30 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 2 * time.Minute
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = time.Minute
	}
	s := &Server{obs: o, store: store, cfg: cfg}
	if cfg.Secret != "" {
		sum := sha256.Sum256([]byte(cfg.Secret))
		s.secretSum = &sum
	}
	s.bodies.New = func() any { return &body{s: s} }
	comp := o.Component
	s.sentBytes = o.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_origin_sent_bytes_total{component=%q}`, comp))
	s.getSeconds = obs.Latency(o.Metrics, fmt.Sprintf(`riff_origin_store_duration_seconds{component=%q,op="get"}`, comp))
	s.statSeconds = obs.Latency(o.Metrics, fmt.Sprintf(`riff_origin_store_duration_seconds{component=%q,op="stat"}`, comp))
	// The series obs.CountError makes, created up front so that counting
	// costs no formatting.
	s.storeTimeouts = o.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_errors_total{component=%q,kind="store_timeout"}`, comp))
	s.storeUnavailable = o.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_errors_total{component=%q,kind="store_unavailable"}`, comp))
	s.fallbackServed = o.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_origin_fallback_total{component=%q,result="served"}`, comp))
	s.fallbackFailed = o.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_origin_fallback_total{component=%q,result="failed"}`, comp))
	s.handler = o.FastMiddleware(s.serve)
	s.srv = &fasthttp.Server{
		Handler:                      s.handler,
		Name:                         "riff-origin",
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		MaxRequestBodySize:           64 << 10, // GET and HEAD have no body worth reading
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		DisablePreParseMultipartForm: true,
		Logger:                       fastLogger{o.Logger},
	}
	o.AddCheck("blob", s.checkStore)
	return s
}

// Handler serves one request: the objects, and with ServerConfig.Admin the
// health and metrics endpoints. It includes the obs middleware (request id,
// metrics, panic recovery), so it can be given to any fasthttp.Server.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) { s.handler(ctx) }

// AdminHandler serves /metrics, /healthz and /readyz and answers 404 to
// anything else: the handler for a separate admin listener.
func (s *Server) AdminHandler(ctx *fasthttp.RequestCtx) {
	if !s.obs.FastAdmin(ctx) {
		s.fail(ctx, fasthttp.StatusNotFound)
	}
}

// Serve accepts connections on ln until Shutdown. It returns nil after
// Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// Shutdown stops accepting connections and waits, until ctx is done, for the
// responses in flight to finish.
func (s *Server) Shutdown(ctx context.Context) error { return s.srv.ShutdownWithContext(ctx) }

// checkStore is the readiness check: blob.Check (S3: the bucket exists
// and the credentials may list it).
func (s *Server) checkStore(ctx context.Context) error { return blob.Check(ctx, s.store) }

func (s *Server) serve(ctx *fasthttp.RequestCtx) {
	if s.cfg.Admin && s.obs.FastAdmin(ctx) {
		return
	}
	if s.secretSum != nil && !s.authorized(ctx) {
		s.fail(ctx, fasthttp.StatusForbidden)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		s.fail(ctx, fasthttp.StatusMethodNotAllowed)
		return
	}
	key, status := requestKey(ctx)
	if status != 0 {
		s.fail(ctx, status)
		return
	}
	s.serveObject(ctx, key)
}

// authorized compares the secret header with the configured secret in
// constant time. Hashing both first keeps the secret's length private too.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	got := ctx.Request.Header.Peek(HeaderSecret)
	sum := sha256.Sum256(got)
	return len(got) > 0 && subtle.ConstantTimeCompare(sum[:], s.secretSum[:]) == 1
}

// requestKey extracts the blob key from the request target as sent (not
// fasthttp's normalised path, which would resolve "..": traversal must be
// refused, not repaired). It returns a status to answer instead when the
// key is invalid (400) or outside the published prefix (404).
func requestKey(ctx *fasthttp.RequestCtx) (string, int) {
	p := ctx.Request.Header.RequestURI()
	if len(p) > 0 && p[0] == '/' {
		if i := bytes.IndexAny(p, "?#"); i >= 0 {
			p = p[:i]
		}
	} else {
		p = ctx.URI().PathOriginal() // absolute-form target
	}
	if len(p) < 2 || p[0] != '/' || len(p) > 3*blob.MaxKeyLen+1 {
		return "", fasthttp.StatusBadRequest
	}
	p = p[1:]
	var key string
	if bytes.IndexByte(p, '%') < 0 {
		key = string(p)
	} else {
		// Decoded once: an escaped '%' would be double encoding.
		var buf [blob.MaxKeyLen]byte
		dec, ok := blobkey.Unescape(buf[:0], p, func(c byte) bool { return c != '%' })
		if !ok {
			return "", fasthttp.StatusBadRequest
		}
		key = string(dec)
	}
	if blob.ValidateKey(key) != nil {
		return "", fasthttp.StatusBadRequest
	}
	if !strings.HasPrefix(key, blobkey.Root) {
		return "", fasthttp.StatusNotFound
	}
	return key, 0
}

// serveObject answers GET or HEAD for a valid published key.
func (s *Server) serveObject(ctx *fasthttp.RequestCtx, key string) {
	head := ctx.IsHead()
	spec, hasRange := httprange.ParseSpec(ctx.Request.Header.Peek(fasthttp.HeaderRange))

	// The store's context is not the pooled RequestCtx (see FastAdmin);
	// with tracing on it carries the request's span.
	base := context.Background()
	if s.obs.Tracing() {
		base = obs.Detached(ctx)
	}
	sctx, cancel := context.WithTimeout(base, s.cfg.StoreTimeout)
	mark := &fallbackMark{allowed: len(ctx.Request.Header.Peek(HeaderFallbackHop)) == 0}
	sctx = withMark(sctx, mark)
	var (
		rc      io.ReadCloser
		fetched *blob.Range // what rc holds; nil: the whole object
		info    blob.Info
		err     error
	)
	if head || (hasRange && spec.IsSuffix()) {
		info, err = s.stat(sctx, key)
	} else {
		if hasRange {
			fetched = &blob.Range{Off: spec.First, Len: -1}
			if spec.Last >= 0 && spec.Last-spec.First < math.MaxInt64-1 {
				fetched.Len = spec.Last - spec.First + 1
			}
		}
		rc, info, err = s.get(sctx, key, fetched)
		if hasRange && errors.Is(err, blob.ErrInvalidRange) {
			// The range starts at or past the end: 416, unless a
			// condition says otherwise; either way the size is needed.
			rc, fetched = nil, nil
			info, err = s.stat(sctx, key)
		}
	}
	if err != nil {
		cancel()
		s.storeError(ctx, key, err)
		return
	}
	// From here on rc, when set, is closed by fasthttp (as the body) or by
	// release.
	release := func() {
		if rc != nil {
			rc.Close()
		}
		cancel()
	}

	h := &ctx.Response.Header
	h.Set(fasthttp.HeaderAcceptRanges, "bytes")
	if mark.used {
		h.Set(HeaderFallback, "1")
	}
	if info.ETag != "" {
		h.Set(fasthttp.HeaderETag, info.ETag)
	}
	if !info.ModTime.IsZero() {
		h.SetLastModified(info.ModTime)
	}
	h.Set(fasthttp.HeaderCacheControl, cacheControl(key))

	// RFC 9110 §13.2.2: If-None-Match, or failing that If-Modified-Since,
	// before Range.
	if s.notModified(ctx, info) {
		release()
		ctx.SetStatusCode(fasthttp.StatusNotModified)
		return
	}

	var r httprange.Range
	partial := false
	if hasRange && httprange.IfRangeAllows(ctx.Request.Header.Peek(fasthttp.HeaderIfRange), info.ETag, info.ModTime) {
		var ok bool
		r, ok, err = spec.Resolve(info.Size)
		if err != nil {
			release()
			var buf [40]byte
			h.SetBytesV(fasthttp.HeaderContentRange, httprange.AppendUnsatisfiedContentRange(buf[:0], info.Size))
			s.fail(ctx, fasthttp.StatusRequestedRangeNotSatisfiable)
			return
		}
		partial = ok
	}

	h.Set(fasthttp.HeaderContentType, contentType(key, info))
	h.Set("X-Content-Type-Options", "nosniff")
	length := info.Size
	if partial {
		length = r.Length
		ctx.SetStatusCode(fasthttp.StatusPartialContent)
		var buf [64]byte
		h.SetBytesV(fasthttp.HeaderContentRange, r.AppendContentRange(buf[:0], info.Size))
	} else {
		ctx.SetStatusCode(fasthttp.StatusOK)
	}
	if head {
		release()
		h.SetContentLength(int(length))
		return
	}

	// Does rc hold exactly the bytes to send? It does when the whole object
	// was fetched for a 200, or the client's range for a 206 (the store cut
	// it at the end exactly as Resolve did).
	if rc != nil && (fetched != nil) != partial {
		rc.Close()
		rc = nil
	}
	if rc == nil {
		var want *blob.Range
		if partial {
			want = &blob.Range{Off: r.Start, Len: r.Length}
		}
		var again blob.Info
		rc, again, err = s.get(sctx, key, want)
		if err == nil && (again.Size != info.Size || again.ETag != info.ETag) {
			// Replaced between two calls; keys are immutable, so this is
			// someone writing where they should not. Let the client retry.
			rc.Close()
			rc, err = nil, fmt.Errorf("object changed while being read: %w", errChanged)
		}
		if err != nil {
			release()
			ctx.Response.Header.Del(fasthttp.HeaderContentRange)
			s.storeError(ctx, key, err)
			return
		}
	}
	b := s.bodies.Get().(*body)
	b.rc, b.cancel = rc, cancel
	ctx.SetBodyStream(b, int(length))
}

var errChanged = errors.New("changed")

// notModified evaluates If-None-Match, or without it If-Modified-Since.
func (s *Server) notModified(ctx *fasthttp.RequestCtx, info blob.Info) bool {
	if inm := ctx.Request.Header.Peek(fasthttp.HeaderIfNoneMatch); len(inm) > 0 {
		return httprange.ETagMatch(inm, info.ETag)
	}
	if ims := ctx.Request.Header.Peek(fasthttp.HeaderIfModifiedSince); len(ims) > 0 {
		return httprange.NotModifiedSince(ims, info.ModTime)
	}
	return false
}

func (s *Server) get(ctx context.Context, key string, rng *blob.Range) (io.ReadCloser, blob.Info, error) {
	start := time.Now()
	span := s.startStoreSpan(ctx, "blob get", key)
	rc, info, err := s.store.Get(ctx, key, rng)
	s.getSeconds.UpdateDuration(start)
	endStoreSpan(span, err)
	if err != nil {
		return s.tryFallback(ctx, key, rng, false, err)
	}
	return rc, info, err
}

func (s *Server) stat(ctx context.Context, key string) (blob.Info, error) {
	start := time.Now()
	span := s.startStoreSpan(ctx, "blob stat", key)
	info, err := s.store.Stat(ctx, key)
	s.statSeconds.UpdateDuration(start)
	endStoreSpan(span, err)
	if err != nil {
		_, info, err = s.tryFallback(ctx, key, nil, true, err)
	}
	return info, err
}

// startStoreSpan starts a span for a blob store call, a child of the
// request's (ctx carries it: see serveObject); nil with tracing off.
func (s *Server) startStoreSpan(ctx context.Context, name, key string) trace.Span {
	if !s.obs.Tracing() {
		return nil
	}
	_, span := s.obs.StartSpan(ctx, name, attribute.String("blob.key", key))
	return span
}

// endStoreSpan ends span; a missing object is an answer, not a failure.
func endStoreSpan(span trace.Span, err error) {
	if span == nil {
		return
	}
	if errors.Is(err, blob.ErrNotFound) {
		err = nil
	}
	obs.EndSpan(span, err)
}

// storeError maps a store error to the answer: the one place that does.
func (s *Server) storeError(ctx *fasthttp.RequestCtx, key string, err error) {
	switch {
	case errors.Is(err, blob.ErrNotFound):
		s.fail(ctx, fasthttp.StatusNotFound)
	case errors.Is(err, blob.ErrInvalidKey):
		s.fail(ctx, fasthttp.StatusBadRequest)
	case errors.Is(err, context.DeadlineExceeded):
		s.storeTimeouts.Inc()
		s.obs.Logger.WarnContext(ctx, "store timeout", "key", key, "err", err)
		s.fail(ctx, fasthttp.StatusGatewayTimeout)
	default:
		s.storeUnavailable.Inc()
		s.obs.Logger.ErrorContext(ctx, "store error", "key", key, "err", err)
		s.fail(ctx, fasthttp.StatusServiceUnavailable)
	}
}

// fail answers status with a small RFC 9457 problem body that reveals
// nothing internal.
func (s *Server) fail(ctx *fasthttp.RequestCtx, status int) {
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, cacheNone)
	ctx.Response.Header.Del(fasthttp.HeaderETag)
	ctx.Response.Header.Del(fasthttp.HeaderLastModified)
	ctx.Response.Header.SetContentType("application/problem+json")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(problem(status))
}

func problem(status int) string {
	switch status {
	case fasthttp.StatusBadRequest:
		return `{"type":"about:blank","title":"Bad Request","status":400}` + "\n"
	case fasthttp.StatusForbidden:
		return `{"type":"about:blank","title":"Forbidden","status":403}` + "\n"
	case fasthttp.StatusNotFound:
		return `{"type":"about:blank","title":"Not Found","status":404}` + "\n"
	case fasthttp.StatusMethodNotAllowed:
		return `{"type":"about:blank","title":"Method Not Allowed","status":405}` + "\n"
	case fasthttp.StatusRequestedRangeNotSatisfiable:
		return `{"type":"about:blank","title":"Range Not Satisfiable","status":416}` + "\n"
	case fasthttp.StatusServiceUnavailable:
		return `{"type":"about:blank","title":"Service Unavailable","status":503}` + "\n"
	case fasthttp.StatusGatewayTimeout:
		return `{"type":"about:blank","title":"Gateway Timeout","status":504}` + "\n"
	}
	return fmt.Sprintf(`{"type":"about:blank","title":%q,"status":%d}`+"\n", fasthttp.StatusMessage(status), status)
}

// cacheControl returns the Cache-Control for an object: immutable below a
// version folder ("v" and digits), short otherwise.
func cacheControl(key string) string {
	for seg := range strings.SplitSeq(key, "/") {
		if len(seg) > 1 && seg[0] == 'v' && strings.Trim(seg[1:], "0123456789") == "" {
			return cacheImmutable
		}
	}
	return cacheShort
}

// contentType picks the media type by extension (so the types players need
// are right whatever the store recorded), else the stored type.
func contentType(key string, info blob.Info) string {
	if ct := blob.ContentTypeFor(key); ct != "application/octet-stream" || info.ContentType == "" {
		return ct
	}
	return info.ContentType
}

// body is the response body stream: it counts what is sent, lets fasthttp
// hand a file to sendfile (WriteTo into fasthttp's ReaderFrom), and on Close
// closes the store reader, ends the store context and returns to the pool.
// fasthttp calls Close exactly once, when the body has been sent or the
// response is dropped.
type body struct {
	s      *Server
	rc     io.ReadCloser
	cancel context.CancelFunc
	n      int64
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

// WriteTo passes the store reader itself to w's ReadFrom, so an *os.File
// reaches fasthttp's sendfile path.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	var n int64
	var err error
	if rf, ok := w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(b.rc)
	} else {
		n, err = io.Copy(w, b.rc)
	}
	b.n += n
	return n, err
}

// SupportsBodyWriteTo tells fasthttp to use WriteTo (fasthttp.BodyWriterTo).
func (b *body) SupportsBodyWriteTo() bool { return true }

func (b *body) Close() error {
	err := b.rc.Close()
	b.cancel()
	b.s.sentBytes.AddInt64(b.n)
	s := b.s
	*b = body{s: s}
	s.bodies.Put(b)
	return err
}

// fastLogger sends fasthttp's own messages (connection errors and the like)
// to the structured log.
type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	f.l.Warn("fasthttp", "msg", fmt.Sprintf(format, args...))
}
