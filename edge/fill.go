package edge

import (
	"bytes"
	"context"
	"errors"

	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"riff/edge/cache"
	"riff/internal/obs"
)

// sliceKey names a slice in the coalescing group: object, generation
// (so no fetch started before a purge is joined after it), index (-1 for a
// whole object).
type sliceKey struct {
	key string
	gen uint64
	idx int64
	// apart marks the flights of a peer's request for slices this edge
	// does not own (see fill).
	apart bool
}

// fetched is what one flight produced: consecutive slices from first (or
// the whole object, first == -1), and the object's metadata.
type fetched struct {
	first int64
	data  [][]byte
	meta  *cache.Meta
	src   source // srcDisk if every slice came from the disk tier, else srcMiss
}

// gather puts into have the data of slices [first, last] (cut at the
// object's end), taking them from have, the cache, or fetches (from the
// disk tier or the origin) that are coalesced with other requests'. meta is
// what the answer is planned with, or nil when unknown; gather returns the
// metadata it ended up with and where the farthest slice came from.
func (s *Server) gather(rctx context.Context, key string, name cache.Name, first, last int64, meta *cache.Meta, have map[int64][]byte) (*cache.Meta, source, error) {
	S := s.cfg.SliceBytes
	src := srcHit
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
				return meta, src, nil
			}
		}
		s.mayBlock(rctx)
		m, fsrc, err := s.fill(rctx, key, name, missing, meta, have)
		src = max(src, fsrc)
		if err != nil {
			return m, srcMiss, err
		}
		meta = m
	}
	return meta, srcMiss, errors.New("edge: slices still missing after three rounds")
}

// knownMissing reports whether the origin said recently that the named
// object does not exist (Config.NegativeTTL).
func (s *Server) knownMissing(name cache.Name) bool {
	if s.cfg.NegativeTTL <= 0 || !s.cache.Has(name, cache.KindMissing, 0) {
		return false
	}
	s.m.negativeHits.Inc()
	return true
}

// rememberMissing records an origin's 404 for the named object, for
// Config.NegativeTTL. A purge of its prefix forgets it (a new generation).
func (s *Server) rememberMissing(name cache.Name, err error) {
	if s.cfg.NegativeTTL > 0 && errors.Is(err, errNotFound) {
		s.cache.SetTTL(name, cache.KindMissing, 0, &cache.Entry{}, s.cfg.NegativeTTL)
	}
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
// group, one flight per contiguous run with one owner among the peers,
// and adds what arrives to have. It
// returns the metadata and where the farthest slice came from. rctx is
// the request's context: with tracing on, the wait is a span of the
// request, and a flight this request starts is a child of it.
func (s *Server) fill(rctx context.Context, key string, name cache.Name, missing []int64, meta *cache.Meta, have map[int64][]byte) (_ *cache.Meta, _ source, err error) {
	fetchRun := s.fetchRun
	if fromPeer(rctx) {
		fetchRun = s.fetchRunHere // one hop: a peer's request is never forwarded
	}
	fetch := fetchRun
	if s.obs.Tracing() && obs.Sampled(obs.SpanContext(rctx)) {
		tctx, span := s.obs.StartSpan(obs.SpanContext(rctx), "coalesced fill", attribute.Int("slices", len(missing)))
		defer func() { obs.EndSpan(span, err) }()
		sc := trace.SpanContextFromContext(tctx)
		fetch = func(ctx context.Context, run []sliceKey) (fetched, error) {
			return fetchRun(trace.ContextWithSpanContext(ctx, sc), run)
		}
	}
	S := s.cfg.SliceBytes
	gen := name.Gen()
	cached := func(k sliceKey) bool {
		e, ok := s.cache.Get(name, cache.KindSlice, k.idx)
		return ok && (meta == nil || sliceFits(e, meta, k.idx, S))
	}
	owner := func(int64) int { return -1 }
	if s.peers != nil {
		owner = func(idx int64) int { return s.peers.Owner(key, idx) }
	}
	var flights []*cache.Flight[sliceKey, fetched]
	maxRun := max(maxRunBytes/S, 1)
	for i := 0; i < len(missing); {
		j := i + 1
		o := owner(missing[i])
		for j < len(missing) && missing[j] == missing[j-1]+1 && int64(j-i) < maxRun && owner(missing[j]) == o {
			j++
		}
		// A flight of slices this edge owns never asks a peer, so a
		// peer's request may join it. A peer's request for slices this
		// edge does not own (their owner failed for the asker) gets
		// flights apart: one of this edge's own flights for them may be
		// waiting for a peer, perhaps the asker, and two edges must never
		// wait for each other.
		apart := fromPeer(rctx) && o >= 0 && o != s.peers.Self()
		run := make([]sliceKey, 0, j-i)
		for _, idx := range missing[i:j] {
			run = append(run, sliceKey{key, gen, idx, apart})
		}
		fs, joined := s.slices.Claim(run, cached, fetch)
		s.m.coalesced.Add(joined)
		flights = append(flights, fs...)
		i = j
	}
	wctx, cancel := context.WithTimeout(context.Background(), s.cfg.WaitTimeout)
	defer cancel()
	src := srcHit
	for i, f := range flights {
		v, err := f.Wait(wctx)
		if err == nil && meta != nil && v.meta != nil && v.meta.ETag != meta.ETag {
			err, meta = errChanged, v.meta
		}
		if err != nil {
			for _, rest := range flights[i+1:] {
				rest.Leave()
			}
			return meta, srcMiss, err
		}
		if meta == nil {
			meta = v.meta
		}
		src = max(src, v.src)
		for k, d := range v.data {
			have[v.first+int64(k)] = d
		}
	}
	return meta, src, nil
}

// fetchRun is a flight: it gets slices run[0].idx..run[n-1].idx — the
// leading ones the disk tier holds from there, the rest from their owners
// among the peer edges or the origin (fetchFar) —, stores them (under the
// generation the run was named with) and the metadata in the cache, queues
// what the origin sent for the disk tier, and waits until the cache shows
// them, so that a request arriving as the flight ends finds them there.
func (s *Server) fetchRun(ctx context.Context, run []sliceKey) (fetched, error) {
	return s.fetchRunVia(ctx, run, s.peers != nil)
}

// fetchRunHere is fetchRun for a peer's request: this edge's tiers, then
// the origin, never another peer.
func (s *Server) fetchRunHere(ctx context.Context, run []sliceKey) (fetched, error) {
	return s.fetchRunVia(ctx, run, false)
}

func (s *Server) fetchRunVia(ctx context.Context, run []sliceKey, viaPeers bool) (fetched, error) {
	s.fetching.Add(1)
	defer s.fetching.Add(-1)
	k0 := run[0]
	first, last := k0.idx, run[len(run)-1].idx
	name := s.cache.NameAt(k0.key, k0.gen)
	out := fetched{first: first, src: srcDisk}
	if s.disk != nil {
		out.data, out.meta = s.readDisk(k0.key, name, first, last)
	}
	if next := first + int64(len(out.data)); next <= last {
		data, meta, src, err := s.fetchFar(ctx, k0.key, name, next, last, viaPeers)
		if err == nil && next > first && !sameObject(out.meta, meta) {
			// The disk holds another version of the object: the origin's
			// answer is the truth, for the whole run.
			data, meta, src, err = s.fetchFar(ctx, k0.key, name, first, last, viaPeers)
			out.data = nil
		}
		if err != nil {
			return fetched{}, err
		}
		out.data, out.meta, out.src = append(out.data, data...), meta, src
	}
	s.cache.Set(name, cache.KindMeta, 0, &cache.Entry{Meta: out.meta})
	s.cache.Wait()
	return out, nil
}

// fetchOrigin fetches slices first..last of key with one Range request and
// stores them in the cache under name, and for the disk tier. It returns
// the slices the origin sent (none for a 416: the range starts past the
// end) and the object's metadata.
func (s *Server) fetchOrigin(ctx context.Context, key string, name cache.Name, first, last int64) ([][]byte, *cache.Meta, error) {
	S := s.cfg.SliceBytes
	res, err := s.up.Fetch(ctx, key, first*S, (last+1)*S-1)
	if err != nil {
		s.rememberMissing(name, err)
		return nil, nil, err
	}
	meta := &res.Meta
	if res.Status == fasthttp.StatusRequestedRangeNotSatisfiable {
		return nil, meta, nil
	}
	return s.keepSlices(key, name, meta, first, last, res.Body, res.Start, true), meta, nil
}

// keepSlices cuts slices first..last of the object meta describes out of
// body (which starts at object offset off; it may end early, and the last
// slice of an object may be short), stores them in the cache under name,
// queues them for the disk tier if toDisk, and returns them.
func (s *Server) keepSlices(key string, name cache.Name, meta *cache.Meta, first, last int64, body []byte, off int64, toDisk bool) [][]byte {
	S := s.cfg.SliceBytes
	var out [][]byte
	for idx := first; idx <= last; idx++ {
		lo, hi := idx*S, min((idx+1)*S, meta.Size)
		if lo >= hi || lo < off || hi > off+int64(len(body)) {
			break
		}
		part := body[lo-off : hi-off]
		// The waiters and the disk tier get the origin's bytes (never
		// modified); the cache gets a copy in its slab, or, on the heap,
		// the bytes themselves (copied when the run has several slices,
		// so that the cache's byte accounting matches what eviction
		// frees).
		out = append(out, part)
		e := s.cache.SliceEntry(part, meta)
		if _, _, inSlab := e.Slot(); !inSlab && last > first {
			e.Data = bytes.Clone(part)
		}
		s.cache.Set(name, cache.KindSlice, idx, e)
		if s.disk != nil && toDisk {
			s.disk.Put(key, name.Gen(), idx, diskMeta(meta), part)
		}
	}
	return out
}

// readDisk reads the leading slices of first..last that the disk tier
// holds, promotes them into the cache, and returns them with their
// object's metadata (nil if none was there). It stops at the first slice
// missing, of another version of the object, or of the wrong length.
func (s *Server) readDisk(key string, name cache.Name, first, last int64) ([][]byte, *cache.Meta) {
	S := s.cfg.SliceBytes
	var (
		out  [][]byte
		meta *cache.Meta
	)
	for idx := first; idx <= last; idx++ {
		d, dm, ok := s.disk.Read(key, name.Gen(), idx)
		if !ok {
			break
		}
		if meta == nil {
			meta = cacheMeta(dm)
		} else if dm.Size != meta.Size || dm.ETag != meta.ETag {
			break
		}
		if int64(len(d)) != min(S, meta.Size-idx*S) {
			break
		}
		out = append(out, d)
		s.cache.Set(name, cache.KindSlice, idx, s.cache.SliceEntry(d, meta))
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, meta
}

// sameObject reports whether a and b describe the same version of an
// object.
func sameObject(a, b *cache.Meta) bool {
	return a != nil && b != nil && a.Size == b.Size && a.ETag == b.ETag
}

// fetchWholeCoalesced gets a whole small object through the coalescing
// group (index -1).
func (s *Server) fetchWholeCoalesced(rctx context.Context, key string, name cache.Name) (_ *cache.Entry, err error) {
	fetch := s.fetchWhole
	if s.obs.Tracing() && obs.Sampled(obs.SpanContext(rctx)) {
		tctx, span := s.obs.StartSpan(obs.SpanContext(rctx), "coalesced fill")
		defer func() { obs.EndSpan(span, err) }()
		sc := trace.SpanContextFromContext(tctx)
		fetch = func(ctx context.Context, run []sliceKey) (fetched, error) {
			return s.fetchWhole(trace.ContextWithSpanContext(ctx, sc), run)
		}
	}
	k := sliceKey{key, name.Gen(), -1, false}
	var entry *cache.Entry
	cached := func(sliceKey) bool {
		e, ok := s.cache.Get(name, cache.KindWhole, 0)
		entry = e
		return ok
	}
	fs, joined := s.slices.Claim([]sliceKey{k}, cached, fetch)
	s.m.coalesced.Add(joined)
	if len(fs) == 0 {
		return entry, nil
	}
	s.mayBlock(rctx)
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
		s.rememberMissing(s.cache.NameAt(k.key, k.gen), err)
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
