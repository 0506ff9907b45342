package edge

import (
	"errors"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"riff/edge/cache"
	"riff/edge/disk"
	"riff/internal/httprange"
)

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
	if s.answerBodyless(ctx, status, meta, r, vImmutable, srcHit) {
		return
	}
	S := s.cfg.SliceBytes
	first, last := r.Start/S, (r.Start+r.Length-1)/S
	if last-first >= maxFastParts {
		s.serveMediaMiss(ctx, key, name, meta)
		return
	}
	// A body that references the slices (immutable once cached; slab
	// slots under a reference; slice files of the disk tier, which are
	// never modified) and sends them without copying them first.
	b := s.bodies.Get().(*body)
	slab := s.cache.Slab()
	src := srcHit
	for idx := first; idx <= last; idx++ {
		lo, hi := sliceWindow(idx, S, r)
		if e, ok := s.cache.Get(name, cache.KindSlice, idx); ok && sliceFits(e, meta, idx, S) && b.add(slab, e, lo, hi) {
			continue
		}
		if s.addDiskPart(ctx, b, key, name, meta, idx, lo, hi) {
			src = srcDisk
			continue
		}
		b.Close()
		s.serveMediaMiss(ctx, key, name, meta)
		return
	}
	s.writeHead(ctx, status, meta, r, vImmutable, src)
	if b.attach(ctx, r.Length) {
		s.m.direct.Inc()
	}
	if src == srcDisk {
		s.m.diskSendfile.Inc()
	}
	s.count(src, r.Length)
	s.prefetchAfter(key, name, meta, r)
}

// addDiskPart adds bytes [lo, hi) of slice idx to b from the disk tier's
// file, to go out with sendfile, and reports whether it did: only on a
// plain public connection (the body's direct path), and only for a file
// checked since the start and of the object version meta describes.
func (s *Server) addDiskPart(ctx *fasthttp.RequestCtx, b *body, key []byte, name cache.Name, meta *cache.Meta, idx, lo, hi int64) bool {
	if s.disk == nil || s.cfg.DiskCopy {
		return false
	}
	switch ctx.Conn().(type) {
	case *publicConn, *loopConn: // both send file parts with sendfile
	default:
		return false
	}
	fd, n, ok := s.disk.OpenSlice(b2s(key), name.Gen(), idx, meta.ETag)
	if !ok {
		return false
	}
	if n != min(s.cfg.SliceBytes, meta.Size-idx*s.cfg.SliceBytes) {
		unix.Close(fd)
		return false
	}
	b.addFile(fd, disk.HeaderBytes+lo, int(hi-lo))
	return true
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
	if meta == nil && s.knownMissing(name) {
		s.notFound(ctx)
		return
	}
	have := map[int64][]byte{}
	S := s.cfg.SliceBytes
	get := ctx.IsGet()
	for attempt := 0; ; attempt++ {
		src := srcHit
		if meta == nil {
			// The size is unknown: fetch the slices the request most
			// likely needs; the answer tells the size.
			first, last := s.guessSlices(ctx, get)
			m, gsrc, err := s.gather(ctx, keyStr, name, first, last, nil, have)
			if err != nil {
				s.fail(ctx, err)
				return
			}
			meta, src = m, gsrc
		}
		status, r := plan(&ctx.Request.Header, meta)
		if s.answerBodyless(ctx, status, meta, r, vImmutable, src) {
			return
		}
		first, last := r.Start/S, (r.Start+r.Length-1)/S
		m, gsrc, err := s.gather(ctx, keyStr, name, first, last, meta, have)
		if errors.Is(err, errChanged) && attempt == 0 {
			meta = m // replan with what the origin says now
			clear(have)
			continue
		}
		if err != nil {
			s.fail(ctx, err)
			return
		}
		src = max(src, gsrc)
		s.writeHead(ctx, status, meta, r, vImmutable, src)
		// have holds heap bytes only (see gather), owned by no one else.
		b := s.bodies.Get().(*body)
		for idx := first; idx <= last; idx++ {
			lo, hi := sliceWindow(idx, S, r)
			b.addHeap(have[idx][lo:hi])
		}
		b.attach(ctx, r.Length)
		s.count(src, r.Length)
		s.prefetchAfter(key, name, meta, r)
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
