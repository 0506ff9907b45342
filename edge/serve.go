package edge

import (
	"bytes"
	"context"
	"errors"
	"unsafe"

	"github.com/valyala/fasthttp"

	"riff/edge/cache"
	"riff/internal/httprange"
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

	vBytes     = []byte("bytes")
	vHit       = []byte("HIT")
	vMiss      = []byte("MISS")
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
// /t/{token}/{blob key}. It checks the token before anything else, and a
// refused request never reaches the cache or an origin.
func (s *Server) Handler(ctx *fasthttp.RequestCtx) {
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
		return
	default:
		h.SetCanonical(hAllow, vMethods)
		s.plainError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed\n")
		return
	}
	token, rawKey, ok := splitPath(ctx.Request.URI().PathOriginal())
	if !ok {
		s.plainError(ctx, fasthttp.StatusNotFound, "not found\n")
		return
	}
	claims, err := s.verifier.Verify(token, playtoken.TypePlay)
	if err != nil {
		s.refuse(ctx, string(playtoken.ReasonOf(err)))
		return
	}
	key, ok := cleanKey(nil, rawKey)
	if !ok {
		s.badPath(ctx)
		return
	}
	if !claims.Allows(b2s(key)) {
		s.refuse(ctx, reasonPrefix)
		return
	}
	// A rendition above the listener's tier is refused even when asked for
	// by name, not only hidden from the master playlist.
	if claims.MaxKbps > 0 && rungOf(baseName(key)) > claims.MaxKbps {
		s.refuse(ctx, reasonTier)
		return
	}
	switch kind := kindOf(key); kind {
	case kindMedia:
		s.serveMedia(ctx, key)
	default:
		s.servePlaylist(ctx, key, kind, claims.MaxKbps)
	}
}

// badPath answers 400 to a key that breaks the rules of path.go.
func (s *Server) badPath(ctx *fasthttp.RequestCtx) {
	s.m.badPath.Inc()
	s.plainError(ctx, fasthttp.StatusBadRequest, "bad path\n")
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
		s.obs.Logger.WarnContext(ctx, "fill failed", "path", string(ctx.Path()), "err", err)
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
func (s *Server) writeHead(ctx *fasthttp.RequestCtx, status int, meta *cache.Meta, r httprange.Range, cc []byte, hit bool) {
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
	if hit {
		h.SetCanonical(hXCache, vHit)
	} else {
		h.SetCanonical(hXCache, vMiss)
	}
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
func (s *Server) writeUnsatisfiable(ctx *fasthttp.RequestCtx, meta *cache.Meta, hit bool) {
	h := &ctx.Response.Header
	ctx.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
	h.SetCanonical(hAcceptRanges, vBytes)
	var buf [40]byte
	h.SetCanonical(hContentRange, httprange.AppendUnsatisfiedContentRange(buf[:0], meta.Size))
	h.SetCanonical(hCacheControl, vNoStore)
	if hit {
		h.SetCanonical(hXCache, vHit)
	} else {
		h.SetCanonical(hXCache, vMiss)
	}
	h.SetContentType("application/problem+json")
	ctx.Response.SetBodyString(problem416)
}

// count records a served answer as a hit or a miss.
func (s *Server) count(hit bool, n int64) {
	if hit {
		s.m.hits.Inc()
		s.m.hitBytes.Add(int(n))
	} else {
		s.m.misses.Inc()
		s.m.missBytes.Add(int(n))
	}
}

// answer writes an answer that needs no body bytes (304, 416, HEAD, empty),
// and reports whether it did.
func (s *Server) answerBodyless(ctx *fasthttp.RequestCtx, status int, meta *cache.Meta, r httprange.Range, cc []byte, hit bool) bool {
	switch {
	case status == fasthttp.StatusNotModified:
		s.writeHead(ctx, status, meta, r, cc, hit)
		s.count(hit, 0)
		return true
	case status == fasthttp.StatusRequestedRangeNotSatisfiable:
		s.writeUnsatisfiable(ctx, meta, hit)
		s.count(hit, 0)
		return true
	case ctx.IsHead(), r.Length == 0:
		s.writeHead(ctx, status, meta, r, cc, hit)
		ctx.Response.Header.SetContentLength(int(r.Length))
		s.count(hit, 0)
		return true
	}
	return false
}

// maxFastParts bounds the slices a warm answer gathers without allocating.
const maxFastParts = 16

// serveMedia answers from slices. The warm path looks up the metadata and
// the slices the range covers and hands cached bytes to fasthttp without
// copying (cached slices are immutable); anything missing goes to
// serveMediaMiss.
func (s *Server) serveMedia(ctx *fasthttp.RequestCtx, key []byte) {
	name := s.cache.Name(key)
	me, ok := s.cache.Get(name, cache.KindMeta, 0)
	if !ok {
		s.serveMediaMiss(ctx, key, name, nil)
		return
	}
	meta := me.Meta
	status, r := plan(&ctx.Request.Header, meta)
	if s.answerBodyless(ctx, status, meta, r, vImmutable, true) {
		return
	}
	S := s.cfg.SliceBytes
	first, last := r.Start/S, (r.Start+r.Length-1)/S
	if first == last {
		// The common case: the range lies in one slice. Heap bytes go to
		// fasthttp as they are (SetBodyRaw; cached slices are immutable).
		e, ok := s.cache.Get(name, cache.KindSlice, first)
		if !ok || !sliceFits(e, meta, first, S) {
			s.serveMediaMiss(ctx, key, name, meta)
			return
		}
		if _, _, inSlab := e.Slot(); !inSlab {
			lo, hi := sliceWindow(first, S, r)
			s.writeHead(ctx, status, meta, r, vImmutable, true)
			ctx.Response.SetBodyRaw(e.Data[lo:hi])
			s.count(true, r.Length)
			return
		}
	}
	if last-first >= maxFastParts {
		s.serveMediaMiss(ctx, key, name, meta)
		return
	}
	// Slab slices, or several slices: a body that references them (and
	// sends slab bytes with sendfile).
	b := s.bodies.Get().(*body)
	slab := s.cache.Slab()
	for idx := first; idx <= last; idx++ {
		e, ok := s.cache.Get(name, cache.KindSlice, idx)
		if !ok || !sliceFits(e, meta, idx, S) {
			b.Close()
			s.serveMediaMiss(ctx, key, name, meta)
			return
		}
		lo, hi := sliceWindow(idx, S, r)
		if !b.add(slab, e, lo, hi) {
			b.Close()
			s.serveMediaMiss(ctx, key, name, meta)
			return
		}
	}
	s.writeHead(ctx, status, meta, r, vImmutable, true)
	if b.attach(ctx, r.Length) {
		s.m.sendfile.Inc()
	}
	s.count(true, r.Length)
}

// sliceFits reports whether e is slice idx of the object meta describes:
// same validator, and the length that slice must have.
func sliceFits(e *cache.Entry, meta *cache.Meta, idx, S int64) bool {
	if e.Meta != meta && (e.Meta == nil || e.Meta.ETag != meta.ETag || e.Meta.Size != meta.Size) {
		return false
	}
	return int64(len(e.Data)) == min(S, meta.Size-idx*S)
}

// sliceWindow returns the part [lo, hi) of slice idx that range r covers.
func sliceWindow(idx, S int64, r httprange.Range) (lo, hi int64) {
	start := idx * S
	lo = max(r.Start, start) - start
	hi = min(r.Start+r.Length, start+S) - start
	return lo, hi
}

// errChanged: an origin answered with a different validator than the one
// the answer was planned with.
var errChanged = errors.New("edge: object changed at the origin")

// serveMediaMiss answers when something is not cached: the metadata (meta
// == nil) or some slices. Missing slices come from the origin through the
// coalescing group, one Range request per contiguous missing run.
func (s *Server) serveMediaMiss(ctx *fasthttp.RequestCtx, key []byte, name cache.Name, meta *cache.Meta) {
	keyStr := string(key)
	if !validKey(keyStr) {
		s.badPath(ctx)
		return
	}
	have := map[int64][]byte{}
	S := s.cfg.SliceBytes
	get := ctx.IsGet()
	for attempt := 0; ; attempt++ {
		hit := meta != nil
		if meta == nil {
			// The size is unknown: fetch the slices the request most
			// likely needs; the answer tells the size.
			first, last := s.guessSlices(ctx, get)
			m, fetched, err := s.gather(keyStr, name, first, last, nil, have)
			if err != nil {
				s.fail(ctx, err)
				return
			}
			meta, hit = m, hit && !fetched
		}
		status, r := plan(&ctx.Request.Header, meta)
		if s.answerBodyless(ctx, status, meta, r, vImmutable, hit) {
			return
		}
		first, last := r.Start/S, (r.Start+r.Length-1)/S
		m, fetched, err := s.gather(keyStr, name, first, last, meta, have)
		if errors.Is(err, errChanged) && attempt == 0 {
			meta = m // replan with what the origin says now
			clear(have)
			continue
		}
		if err != nil {
			s.fail(ctx, err)
			return
		}
		hit = hit && !fetched
		s.writeHead(ctx, status, meta, r, vImmutable, hit)
		// have holds heap bytes only (see gather), owned by no one else.
		if first == last {
			lo, hi := sliceWindow(first, S, r)
			ctx.Response.SetBodyRaw(have[first][lo:hi])
		} else {
			b := s.bodies.Get().(*body)
			for idx := first; idx <= last; idx++ {
				lo, hi := sliceWindow(idx, S, r)
				b.addHeap(have[idx][lo:hi])
			}
			b.attach(ctx, r.Length)
		}
		s.count(hit, r.Length)
		return
	}
}

// guessSlices picks the slices to fetch when the object's size is not
// known yet: those of an int-range's first-pos up to its last-pos, or up to
// guessBytes from the first-pos when the range is open (the origin cuts at
// the end). Without a usable range, the start of the object; HEAD needs
// just the size, so one slice.
func (s *Server) guessSlices(ctx *fasthttp.RequestCtx, get bool) (first, last int64) {
	S := s.cfg.SliceBytes
	n := max(guessBytes/S, 1)
	if !get {
		return 0, 0
	}
	spec, ok := httprange.ParseSpec(ctx.Request.Header.PeekBytes(hRange))
	if !ok || spec.IsSuffix() || len(ctx.Request.Header.PeekBytes(hIfRange)) > 0 {
		return 0, n - 1
	}
	if spec.First > maxGuessStart {
		return 0, 0 // surely past the end: learn the size, answer 416
	}
	first = spec.First / S
	last = first + n - 1
	if spec.Last >= 0 {
		last = min(last, spec.Last/S)
	}
	return first, last
}

// guessBytes is how much an open-ended request fetches when the size is
// not known; maxRunBytes caps one origin request.
const (
	guessBytes    = 8 << 20
	maxRunBytes   = 32 << 20
	maxGuessStart = 1 << 40 // keeps slice arithmetic far from overflow
)

// sliceKey names a slice in the coalescing group: object, generation
// (so no fetch started before a purge is joined after it), index (-1 for a
// whole object).
type sliceKey struct {
	key string
	gen uint64
	idx int64
}

// fetched is what one flight produced: consecutive slices from first (or
// the whole object, first == -1), and the object's metadata.
type fetched struct {
	first int64
	data  [][]byte
	meta  *cache.Meta
}

// gather puts into have the data of slices [first, last] (cut at the
// object's end), taking them from have, the cache, or origin fetches that
// are coalesced with other requests'. meta is what the answer is planned
// with, or nil when unknown; gather returns the metadata it ended up with
// and whether it had to wait for a fetch.
func (s *Server) gather(key string, name cache.Name, first, last int64, meta *cache.Meta, have map[int64][]byte) (*cache.Meta, bool, error) {
	S := s.cfg.SliceBytes
	fetchedAny := false
	for round := 0; round < 3; round++ {
		if meta != nil {
			last = min(last, lastIndex(meta.Size, S))
		}
		var missing []int64
		for idx := first; idx <= last; idx++ {
			if _, ok := have[idx]; ok {
				continue
			}
			if e, ok := s.cache.Get(name, cache.KindSlice, idx); ok && (meta == nil || sliceFits(e, meta, idx, S)) {
				d, ok := s.heapCopy(e)
				if !ok {
					missing = append(missing, idx)
					continue
				}
				have[idx] = d
				if meta == nil {
					meta = e.Meta
					last = min(last, lastIndex(meta.Size, S))
				}
				continue
			}
			missing = append(missing, idx)
		}
		if len(missing) == 0 {
			if meta == nil { // nothing to fetch and still no size: ask
				missing = append(missing, first)
			} else {
				return meta, fetchedAny, nil
			}
		}
		fetchedAny = true
		m, err := s.fill(key, name, missing, meta, have)
		if err != nil {
			return m, fetchedAny, err
		}
		meta = m
	}
	return meta, fetchedAny, errors.New("edge: slices still missing after three rounds")
}

// heapCopy returns the bytes of a cached slice that the miss path may keep:
// slab bytes are copied out under a reference (the slot may be reused once
// the entry is evicted), heap bytes are immutable and returned as they
// are. It reports false if the slot was freed meanwhile.
func (s *Server) heapCopy(e *cache.Entry) ([]byte, bool) {
	slot, gen, inSlab := e.Slot()
	if !inSlab {
		return e.Data, true
	}
	slab := s.cache.Slab()
	if !slab.Acquire(slot, gen) {
		return nil, false
	}
	d := bytes.Clone(e.Data)
	slab.Release(slot)
	return d, true
}

// lastIndex returns the index of the last slice of an object of size
// bytes, -1 for an empty object.
func lastIndex(size, S int64) int64 {
	if size <= 0 {
		return -1
	}
	return (size - 1) / S
}

// fill fetches the missing slices (sorted indexes) through the coalescing
// group, one flight per contiguous run, and adds what arrives to have.
func (s *Server) fill(key string, name cache.Name, missing []int64, meta *cache.Meta, have map[int64][]byte) (*cache.Meta, error) {
	S := s.cfg.SliceBytes
	gen := name.Gen()
	cached := func(k sliceKey) bool {
		e, ok := s.cache.Get(name, cache.KindSlice, k.idx)
		return ok && (meta == nil || sliceFits(e, meta, k.idx, S))
	}
	var flights []*cache.Flight[sliceKey, fetched]
	maxRun := max(maxRunBytes/S, 1)
	for i := 0; i < len(missing); {
		j := i + 1
		for j < len(missing) && missing[j] == missing[j-1]+1 && int64(j-i) < maxRun {
			j++
		}
		run := make([]sliceKey, 0, j-i)
		for _, idx := range missing[i:j] {
			run = append(run, sliceKey{key, gen, idx})
		}
		fs, joined := s.slices.Claim(run, cached, s.fetchRun)
		s.m.coalesced.Add(joined)
		flights = append(flights, fs...)
		i = j
	}
	wctx, cancel := context.WithTimeout(context.Background(), s.cfg.WaitTimeout)
	defer cancel()
	for i, f := range flights {
		v, err := f.Wait(wctx)
		if err == nil && meta != nil && v.meta != nil && v.meta.ETag != meta.ETag {
			err, meta = errChanged, v.meta
		}
		if err != nil {
			for _, rest := range flights[i+1:] {
				rest.Leave()
			}
			return meta, err
		}
		if meta == nil {
			meta = v.meta
		}
		for k, d := range v.data {
			have[v.first+int64(k)] = d
		}
	}
	return meta, nil
}

// fetchRun is a flight: it fetches slices run[0].idx..run[n-1].idx with one
// Range request, stores them (under the generation the run was named with)
// and the metadata in the cache, and waits until the cache shows them, so
// that a request arriving as the flight ends finds them there.
func (s *Server) fetchRun(ctx context.Context, run []sliceKey) (fetched, error) {
	s.fetching.Add(1)
	defer s.fetching.Add(-1)
	S := s.cfg.SliceBytes
	k0 := run[0]
	first, last := k0.idx, run[len(run)-1].idx
	res, err := s.up.Fetch(ctx, k0.key, first*S, (last+1)*S-1)
	if err != nil {
		return fetched{}, err
	}
	meta := &res.Meta
	out := fetched{first: first, meta: meta}
	name := s.cache.NameAt(k0.key, k0.gen)
	if res.Status != fasthttp.StatusRequestedRangeNotSatisfiable {
		body, off := res.Body, res.Start
		for idx := first; idx <= last; idx++ {
			lo, hi := idx*S, min((idx+1)*S, meta.Size)
			if lo >= hi || lo < off || hi > off+int64(len(body)) {
				break
			}
			part := body[lo-off : hi-off]
			// The waiters get the origin's bytes; the cache gets a copy in
			// its slab, or, on the heap, the bytes themselves (copied when
			// the run has several slices, so that the cache's byte
			// accounting matches what eviction frees).
			out.data = append(out.data, part)
			e := s.cache.SliceEntry(part, meta)
			if _, _, inSlab := e.Slot(); !inSlab && len(run) > 1 {
				e.Data = bytes.Clone(part)
			}
			s.cache.Set(name, cache.KindSlice, idx, e)
		}
	}
	s.cache.Set(name, cache.KindMeta, 0, &cache.Entry{Meta: meta})
	s.cache.Wait()
	return out, nil
}

// errTooLarge: a playlist bigger than Config.MaxPlaylistBytes.
var errTooLarge = errors.New("edge: playlist too large")

// servePlaylist answers a playlist or MPD, cached whole. master.m3u8 and
// MPDs are filtered to the token's bitrate ceiling (see playlist.go); the
// filtered bytes are cached per ceiling.
func (s *Server) servePlaylist(ctx *fasthttp.RequestCtx, key []byte, kind, maxKbps int) {
	name := s.cache.Name(key)
	e, hit := s.cache.Get(name, cache.KindWhole, 0)
	if !hit {
		keyStr := string(key)
		if !validKey(keyStr) {
			s.badPath(ctx)
			return
		}
		var err error
		if e, err = s.fetchWholeCoalesced(keyStr, name); err != nil {
			s.fail(ctx, err)
			return
		}
	}
	cc := vImmutable
	if kind == kindMaster || kind == kindMPD {
		cc = s.ccPlaylist
		if maxKbps > 0 {
			fe, ok := s.cache.Get(name, cache.KindFiltered, int64(maxKbps))
			if !ok {
				var err error
				if fe, err = s.filter(name, e, kind, maxKbps); err != nil {
					s.fail(ctx, err)
					return
				}
			}
			if fe.Meta == nil { // nothing this tier may play
				s.refuse(ctx, reasonTier)
				return
			}
			e = fe
		}
	}
	status, r := plan(&ctx.Request.Header, e.Meta)
	if s.answerBodyless(ctx, status, e.Meta, r, cc, hit) {
		return
	}
	s.writeHead(ctx, status, e.Meta, r, cc, hit)
	ctx.Response.SetBodyRaw(e.Data[r.Start : r.Start+r.Length])
	s.count(hit, r.Length)
}

// filter makes and caches the filtered form of a playlist entry. An entry
// with nil Meta records that nothing is left.
func (s *Server) filter(name cache.Name, e *cache.Entry, kind, maxKbps int) (*cache.Entry, error) {
	var out []byte
	var kept int
	if kind == kindMaster {
		out, kept = filterMaster(e.Data, maxKbps)
		if kept < 0 { // not a multivariant playlist: nothing to filter
			return e, nil
		}
	} else {
		var err error
		if out, kept, err = filterMPD(e.Data, maxKbps); err != nil {
			return nil, err
		}
	}
	fe := &cache.Entry{}
	if kept > 0 {
		m := *e.Meta
		m.Size = int64(len(out))
		m.ETag = tierETag(e.Meta.ETag, maxKbps)
		fe.Data, fe.Meta = out, &m
	}
	s.cache.Set(name, cache.KindFiltered, int64(maxKbps), fe)
	return fe, nil
}

// tierETag derives the validator of a filtered playlist from the
// original's: "abc" becomes "abc-mbr128" (weakness is kept).
func tierETag(etag string, maxKbps int) string {
	if len(etag) < 2 || etag[len(etag)-1] != '"' {
		return etag
	}
	b := make([]byte, 0, len(etag)+12)
	b = append(b, etag[:len(etag)-1]...)
	b = append(b, "-mbr"...)
	b = appendInt(b, int64(maxKbps))
	return string(append(b, '"'))
}

func appendInt(b []byte, n int64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// fetchWholeCoalesced gets a whole small object through the coalescing
// group (index -1).
func (s *Server) fetchWholeCoalesced(key string, name cache.Name) (*cache.Entry, error) {
	k := sliceKey{key, name.Gen(), -1}
	var entry *cache.Entry
	cached := func(sliceKey) bool {
		e, ok := s.cache.Get(name, cache.KindWhole, 0)
		entry = e
		return ok
	}
	fs, joined := s.slices.Claim([]sliceKey{k}, cached, s.fetchWhole)
	s.m.coalesced.Add(joined)
	if len(fs) == 0 {
		return entry, nil
	}
	wctx, cancel := context.WithTimeout(context.Background(), s.cfg.WaitTimeout)
	defer cancel()
	v, err := fs[0].Wait(wctx)
	if err != nil {
		return nil, err
	}
	return &cache.Entry{Data: v.data[0], Meta: v.meta}, nil
}

// fetchWhole is a flight that fetches a whole playlist.
func (s *Server) fetchWhole(ctx context.Context, run []sliceKey) (fetched, error) {
	s.fetching.Add(1)
	defer s.fetching.Add(-1)
	k := run[0]
	res, err := s.up.Fetch(ctx, k.key, 0, -1)
	if err != nil {
		return fetched{}, err
	}
	if res.Status != fasthttp.StatusOK {
		return fetched{}, errBadOrigin
	}
	if len(res.Body) > s.cfg.MaxPlaylistBytes {
		return fetched{}, errTooLarge
	}
	meta := &res.Meta
	s.cache.Set(s.cache.NameAt(k.key, k.gen), cache.KindWhole, 0, &cache.Entry{Data: res.Body, Meta: meta})
	s.cache.Wait()
	return fetched{first: -1, data: [][]byte{res.Body}, meta: meta}, nil
}

// s2b views s as bytes without copying, for fasthttp setters that copy.
func s2b(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
