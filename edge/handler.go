package edge

import (
	"context"
	"errors"
	"unsafe"

	"github.com/valyala/fasthttp"

	"riff/edge/cache"
	"riff/internal/blobkey"
	"riff/internal/httprange"
	"riff/internal/obs"
	"riff/internal/playtoken"
)

// Header names and fixed values, kept as bytes so that setting them costs
// no allocation.
var (
	hAcceptRanges    = []byte("Accept-Ranges")
	hCacheControl    = []byte("Cache-Control")
	hXCache          = []byte("X-Cache")
	hIfNoneMatch     = []byte("If-None-Match")
	hIfModifiedSince = []byte("If-Modified-Since")
	hIfRange         = []byte("If-Range")
	hAllow           = []byte("Allow")
	hACAO            = []byte("Access-Control-Allow-Origin")
	hACEH            = []byte("Access-Control-Expose-Headers")
	hACAM            = []byte("Access-Control-Allow-Methods")
	hACAH            = []byte("Access-Control-Allow-Headers")
	hACMA            = []byte("Access-Control-Max-Age")
	hNoSniff         = []byte("X-Content-Type-Options")
	hXForwardedFor   = []byte("X-Forwarded-For")

	vBytes     = []byte("bytes")
	vHit       = []byte("HIT")
	vMiss      = []byte("MISS")
	vDisk      = []byte("DISK")
	vPeer      = []byte("PEER")
	vStar      = []byte("*")
	vExpose    = []byte("Content-Range, Content-Length, Accept-Ranges, ETag, X-Cache")
	vMethods   = []byte("GET, HEAD, OPTIONS")
	vReqHdrs   = []byte("Range, If-Range, If-None-Match, If-Modified-Since")
	vMaxAge    = []byte("86400")
	vImmutable = []byte("public, max-age=31536000, immutable")
	vNoStore   = []byte("no-store")
	vNoSniff   = []byte("nosniff")
)

// Handler serves the public side: GET, HEAD and OPTIONS of
// /t/{token}/{blob key}, and of album covers at /covers/… without a token
// (path.go). It checks the token before anything else, and a refused
// request never reaches the cache or an origin.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) { s.handle(ctx) }

// handle is Handler; it returns the subject of the token the request
// carried when the token was accepted (for the access log).
func (s *Server) handle(ctx *fasthttp.RequestCtx) (subject string) {
	h := &ctx.Response.Header
	h.SetCanonical(hACAO, vStar)
	h.SetCanonical(hACEH, vExpose)
	switch {
	case ctx.IsGet(), ctx.IsHead():
	case ctx.IsOptions():
		// CORS preflight: browsers send it without credentials, so it
		// carries no verdict on the token and costs nothing upstream.
		h.SetCanonical(hACAM, vMethods)
		h.SetCanonical(hACAH, vReqHdrs)
		h.SetCanonical(hACMA, vMaxAge)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return ""
	default:
		h.SetCanonical(hAllow, vMethods)
		s.plainError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed\n")
		return ""
	}
	if key, ok := coverKey(ctx.Request.URI().PathOriginal()); ok {
		s.serveMedia(ctx, key) // a public cover: no token (path.go)
		return ""
	}
	token, rawKey, ok := splitPath(ctx.Request.URI().PathOriginal())
	if !ok {
		s.plainError(ctx, fasthttp.StatusNotFound, "not found\n")
		return ""
	}
	end := s.span(ctx, "token verify")
	claims, err := s.verifier.Verify(token, playtoken.TypePlay)
	end(err)
	if err != nil {
		s.refuse(ctx, string(playtoken.ReasonOf(err)))
		return ""
	}
	key, ok := cleanKey(nil, rawKey)
	if !ok {
		s.badPath(ctx)
		return claims.Subject
	}
	if !claims.Allows(b2s(key)) {
		s.refuse(ctx, reasonPrefix)
		return claims.Subject
	}
	// A rendition above the listener's tier is refused even when asked for
	// by name, not only hidden from the master playlist.
	if claims.MaxKbps > 0 && blobkey.RungOf(key) > claims.MaxKbps {
		s.refuse(ctx, reasonTier)
		return claims.Subject
	}
	switch kind := blobkey.KindOf(key); kind {
	case blobkey.KindMedia:
		s.serveMedia(ctx, key)
	default:
		s.servePlaylist(ctx, key, kind, claims.MaxKbps)
	}
	return claims.Subject
}

// badPath answers 400 to a key that breaks the rules of path.go.
func (s *Server) badPath(ctx *fasthttp.RequestCtx) {
	s.m.badPath.Inc()
	s.plainError(ctx, fasthttp.StatusBadRequest, "bad path\n")
}

// notFound answers 404 for an object the origin said recently it does not
// have (negative caching).
func (s *Server) notFound(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.SetCanonical(hXCache, vHit)
	s.fail(ctx, errNotFound)
}

// refuse answers 403 with a body that says nothing about why; the reason
// goes to the metrics.
func (s *Server) refuse(ctx *fasthttp.RequestCtx, reason string) {
	s.countRefusal(reason)
	s.plainError(ctx, fasthttp.StatusForbidden, "forbidden\n")
}

func (s *Server) plainError(ctx *fasthttp.RequestCtx, status int, body string) {
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.Header.SetCanonical(hCacheControl, vNoStore)
	ctx.Response.SetBodyString(body)
}

// fail answers an error from the cache fill path. Statuses are decided
// here and nowhere else; the client never sees the error text.
// span starts a child span of the request's named name when tracing is
// on; call the returned function with the outcome. Off, it costs a pointer
// check and no allocation.
func (s *Server) span(ctx context.Context, name string) func(error) {
	if !s.obs.Tracing() {
		return endNothing
	}
	_, span := s.obs.StartSpan(obs.SpanContext(ctx), name)
	if !span.IsRecording() {
		return endNothing // an unsampled request
	}
	return func(err error) { obs.EndSpan(span, err) }
}

func endNothing(error) {}

func (s *Server) fail(ctx *fasthttp.RequestCtx, err error) {
	status, kind := fasthttp.StatusBadGateway, "origin_unavailable"
	switch {
	case errors.Is(err, errNotFound):
		status, kind = fasthttp.StatusNotFound, "not_found"
	case errors.Is(err, errTimeout), errors.Is(err, context.DeadlineExceeded):
		status, kind = fasthttp.StatusGatewayTimeout, "origin_timeout"
	case errors.Is(err, errBadOrigin), errors.Is(err, errBadMPD), errors.Is(err, errTooLarge):
		kind = "bad_origin_response"
	case errors.Is(err, errUnavailable):
	default:
		status, kind = fasthttp.StatusInternalServerError, "internal"
	}
	s.obs.CountError(kind)
	if status != fasthttp.StatusNotFound {
		s.obs.Logger.WarnContext(ctx, "fill failed", "path", obs.RedactPath(string(ctx.Path())), "err", err)
	}
	ctx.Response.ResetBody()
	s.plainError(ctx, status, fasthttp.StatusMessage(status)+"\n")
}

// plan evaluates the request's preconditions and Range against an object
// described by meta exactly as the origin does (RFC 9110 §13.2.2):
// If-None-Match (or, without it, If-Modified-Since) may answer 304; then
// Range, unless If-Range disagrees, may answer 206 or 416; otherwise 200
// with the whole object. HEAD is planned like GET (it answers the headers
// the GET would get).
func plan(req *fasthttp.RequestHeader, meta *cache.Meta) (int, httprange.Range) {
	if inm := req.PeekBytes(hIfNoneMatch); len(inm) > 0 {
		if httprange.ETagMatch(inm, meta.ETag) {
			return fasthttp.StatusNotModified, httprange.Range{}
		}
	} else if ims := req.PeekBytes(hIfModifiedSince); len(ims) > 0 && httprange.NotModifiedSince(ims, meta.Modified) {
		return fasthttp.StatusNotModified, httprange.Range{}
	}
	whole := httprange.Range{Start: 0, Length: meta.Size}
	rh := req.PeekBytes(hRange)
	if len(rh) == 0 {
		return fasthttp.StatusOK, whole
	}
	if ir := req.PeekBytes(hIfRange); len(ir) > 0 && !httprange.IfRangeAllows(ir, meta.ETag, meta.Modified) {
		return fasthttp.StatusOK, whole
	}
	r, ok, err := httprange.Parse(rh, meta.Size)
	switch {
	case err != nil:
		return fasthttp.StatusRequestedRangeNotSatisfiable, httprange.Range{}
	case !ok:
		return fasthttp.StatusOK, whole
	}
	return fasthttp.StatusPartialContent, r
}

// writeHead sets the status and headers of an answer about meta. For 206
// r is the range; for 200 and 206 the caller sets the body (or, for HEAD,
// the Content-Length).
func (s *Server) writeHead(ctx *fasthttp.RequestCtx, status int, meta *cache.Meta, r httprange.Range, cc []byte, src source) {
	h := &ctx.Response.Header
	ctx.SetStatusCode(status)
	h.SetCanonical(hAcceptRanges, vBytes)
	if meta.ETag != "" {
		h.SetCanonical(hETag, s2b(meta.ETag))
	}
	if meta.LastModified != "" {
		h.SetCanonical(hLastModified, s2b(meta.LastModified))
	}
	h.SetCanonical(hCacheControl, cc)
	h.SetCanonical(hXCache, src.header())
	if status == fasthttp.StatusNotModified {
		return
	}
	if status == fasthttp.StatusPartialContent {
		var buf [64]byte
		h.SetCanonical(hContentRange, r.AppendContentRange(buf[:0], meta.Size))
	}
	if meta.ContentType != "" {
		h.SetContentType(meta.ContentType)
	}
	h.SetCanonical(hNoSniff, vNoSniff)
}

// problem416 is the origin's answer to an unsatisfiable range, body and
// all, so that the edge's is the same.
const problem416 = `{"type":"about:blank","title":"Range Not Satisfiable","status":416}` + "\n"

// writeUnsatisfiable answers 416 as the origin does: Content-Range with
// the size, an RFC 9457 problem body, no validators, not cacheable.
func (s *Server) writeUnsatisfiable(ctx *fasthttp.RequestCtx, meta *cache.Meta, src source) {
	h := &ctx.Response.Header
	ctx.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
	h.SetCanonical(hAcceptRanges, vBytes)
	var buf [40]byte
	h.SetCanonical(hContentRange, httprange.AppendUnsatisfiedContentRange(buf[:0], meta.Size))
	h.SetCanonical(hCacheControl, vNoStore)
	h.SetCanonical(hXCache, src.header())
	h.SetContentType("application/problem+json")
	ctx.Response.SetBodyString(problem416)
}

// source says where an answer's bytes came from: RAM (HIT), the disk tier
// (DISK), the slice's owner among the peer edges (PEER) or the origin
// (MISS). An answer from several is named after the farthest.
type source uint8

const (
	srcHit source = iota
	srcDisk
	srcPeer
	srcMiss
)

// sourceOf is srcHit for a hit, srcMiss otherwise.
func sourceOf(hit bool) source {
	if hit {
		return srcHit
	}
	return srcMiss
}

func (src source) header() []byte {
	switch src {
	case srcHit:
		return vHit
	case srcDisk:
		return vDisk
	case srcPeer:
		return vPeer
	}
	return vMiss
}

// count records a served answer by where it came from.
func (s *Server) count(src source, n int64) {
	switch src {
	case srcHit:
		s.m.hits.Inc()
		s.m.hitBytes.Add(int(n))
	case srcDisk:
		s.m.diskHits.Inc()
		s.m.diskBytes.Add(int(n))
	case srcPeer:
		s.m.peerHits.Inc()
		s.m.peerBytes.Add(int(n))
	default:
		s.m.misses.Inc()
		s.m.missBytes.Add(int(n))
	}
}

// answer writes an answer that needs no body bytes (304, 416, HEAD, empty),
// and reports whether it did.
func (s *Server) answerBodyless(ctx *fasthttp.RequestCtx, status int, meta *cache.Meta, r httprange.Range, cc []byte, src source) bool {
	switch {
	case status == fasthttp.StatusNotModified:
		s.writeHead(ctx, status, meta, r, cc, src)
		s.count(src, 0)
		return true
	case status == fasthttp.StatusRequestedRangeNotSatisfiable:
		s.writeUnsatisfiable(ctx, meta, src)
		s.count(src, 0)
		return true
	case ctx.IsHead(), r.Length == 0:
		s.writeHead(ctx, status, meta, r, cc, src)
		ctx.Response.Header.SetContentLength(int(r.Length))
		s.count(src, 0)
		return true
	}
	return false
}

// s2b views s as bytes without copying, for fasthttp setters that copy.
func s2b(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
