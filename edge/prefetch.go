package edge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/Eyevinn/mp4ff/bits"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/VictoriaMetrics/metrics"

	"riff/edge/cache"
	"riff/internal/httprange"
)

// Prefetch: when a listener's request is a segment of a packaged rendition
// (a single-file CMAF .mp4 whose sidx lists the segments; HLS byte ranges
// and DASH SegmentBase both name those), the slices of the next segment
// that RAM lacks are fetched in the background, through the same
// coalescing group and tiers as a miss (disk, owner peer, origin), so the
// player's next request is a hit.
//
// The handler calls prefetchAfter once it has answered a range; it costs
// a few integer operations unless the next segment may reach a slice the
// answer did not touch. Then the object's segment table (from the sidx,
// read once per object and generation, kept in a small map) says whether
// the answer ended on a segment boundary and which slices the next segment
// needs; if some are missing and fewer than Config.Prefetch prefetches are
// running and the coalescing group is not busy, a goroutine fetches them;
// otherwise the prefetch is dropped (counted): a prefetch is never worth
// slowing a listener down for. The handler only calls it for requests
// whose token was accepted.

// prefetchMaxTables bounds the segment tables kept; the map is emptied
// when it is full (tables are cheap to rebuild from a cached slice 0).
const prefetchMaxTables = 4096

// prefetchBusy is the number of slices in flight beyond which prefetches
// are dropped.
const prefetchBusy = 256

// prefetchTimeout bounds one prefetch.
const prefetchTimeout = 10 * time.Second

// segments is an object's segment table: where its segments start, and
// the end of the last (nil: the object has no usable sidx), for one
// generation.
type segments struct {
	gen    uint64
	starts []int64
}

type prefetcher struct {
	s   *Server
	sem chan struct{}

	mu     sync.Mutex
	tables map[string]segments // by key

	started, dropped, failed *metrics.Counter
}

// newPrefetcher returns a prefetcher running up to n prefetches at once,
// or nil (no prefetch) for n <= 0.
func newPrefetcher(s *Server, set *metrics.Set, n int) *prefetcher {
	if n <= 0 {
		return nil
	}
	return &prefetcher{
		s: s, sem: make(chan struct{}, n), tables: map[string]segments{},
		started: set.NewCounter(`riff_edge_prefetches_total{result="started"}`),
		dropped: set.NewCounter(`riff_edge_prefetches_total{result="dropped"}`),
		failed:  set.NewCounter(`riff_edge_prefetches_total{result="failed"}`),
	}
}

var mp4Suffix = []byte(".mp4")

// prefetchAfter is called when range r of the media object key (named
// name, described by meta) has been answered to a listener whose token
// was accepted. key is not kept.
func (s *Server) prefetchAfter(key []byte, name cache.Name, meta *cache.Meta, r httprange.Range) {
	p := s.pf
	if p == nil || r.Length <= 0 {
		return
	}
	end := r.Start + r.Length // the next segment's first byte, if r is a segment
	S := s.cfg.SliceBytes
	if end >= meta.Size || (end-1+2*r.Length)/S == (end-1)/S || !bytes.HasSuffix(key, mp4Suffix) {
		// The end, or a next segment as long as this one (twice over)
		// ends in the slice this answer ends in, which is cached.
		return
	}
	p.consider(key, name, meta, end)
}

// consider starts a prefetch of the segment that starts at end, unless
// the segment table says there is none or its slices are cached, or the
// edge is busy. It allocates only when it starts one.
func (p *prefetcher) consider(key []byte, name cache.Name, meta *cache.Meta, end int64) {
	p.mu.Lock()
	t, known := p.tables[string(key)]
	p.mu.Unlock()
	known = known && t.gen == name.Gen()
	starts := t.starts
	if known {
		first, last, ok := p.nextSlices(starts, end)
		if !ok || p.cached(b2s(key), name, first, last) {
			return
		}
	}
	select {
	case p.sem <- struct{}{}:
	default:
		p.dropped.Inc()
		return
	}
	if p.s.slices.InFlight() > prefetchBusy {
		<-p.sem
		p.dropped.Inc()
		return
	}
	p.started.Inc()
	p.s.fetching.Add(1) // Shutdown waits for it
	tk := sliceKey{key: string(key), gen: name.Gen()}
	go func() {
		defer p.s.fetching.Add(-1)
		defer func() { <-p.sem }()
		if err := p.run(tk, name, meta, end, starts, known); err != nil {
			p.failed.Inc()
			p.s.obs.Logger.Debug("prefetch failed", "key", tk.key, "err", err)
		}
	}()
}

func (p *prefetcher) run(tk sliceKey, name cache.Name, meta *cache.Meta, end int64, starts []int64, known bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), prefetchTimeout)
	defer cancel()
	if !known {
		var err error
		if starts, err = p.loadTable(ctx, tk.key, name, meta); err != nil && !errors.Is(err, errNoSidx) {
			return err // not remembered: try again later
		}
		p.mu.Lock()
		if len(p.tables) >= prefetchMaxTables {
			clear(p.tables)
		}
		p.tables[tk.key] = segments{gen: tk.gen, starts: starts}
		p.mu.Unlock()
	}
	first, last, ok := p.nextSlices(starts, end)
	if !ok || p.cached(tk.key, name, first, last) {
		return nil
	}
	_, _, err := p.s.gather(ctx, tk.key, name, first, last, meta, map[int64][]byte{})
	return err
}

// nextSlices returns the slices of the segment that starts at end (or of
// the first segment, when end is before it: the answer was the init
// segment or the sidx), and false if end is not a segment boundary.
func (p *prefetcher) nextSlices(starts []int64, end int64) (first, last int64, ok bool) {
	if len(starts) < 2 {
		return 0, 0, false
	}
	i := sort.Search(len(starts), func(i int) bool { return starts[i] >= end })
	switch {
	case end <= starts[0]:
		i = 0
	case i >= len(starts)-1 || starts[i] != end:
		return 0, 0, false
	}
	S := p.s.cfg.SliceBytes
	return starts[i] / S, (starts[i+1] - 1) / S, true
}

// cached reports whether slices first..last of key are all in this edge's
// RAM or disk tier. A slice on disk is not prefetched: it goes out from its
// file (sendfile) when asked for, and reading it into RAM ahead of time —
// a whole slice read, checked and copied into the slab — cost more than it
// saved and churned RAM (measured: a 16 MiB RAM tier over a disk tier
// holding everything spent a third of its CPU on such promotions).
func (p *prefetcher) cached(key string, name cache.Name, first, last int64) bool {
	for idx := first; idx <= last; idx++ {
		if !p.s.cache.Has(name, cache.KindSlice, idx) && (p.s.disk == nil || !p.s.disk.Has(key, name.Gen(), idx)) {
			return false
		}
	}
	return true
}

// errNoSidx: the object has no usable sidx near its start; remembered, so
// that it is not read again.
var errNoSidx = errors.New("edge: prefetch: no sidx")

// maxSidxBytes bounds how far into an object the sidx is looked for.
const maxSidxBytes = 4 << 20

// loadTable reads the object's sidx (through the cache, like any range)
// and returns its segment table.
func (p *prefetcher) loadTable(ctx context.Context, key string, name cache.Name, meta *cache.Meta) ([]int64, error) {
	S := p.s.cfg.SliceBytes
	have := map[int64][]byte{}
	var head []byte
	for upto, round := int64(0), 0; round < 8; round++ {
		if _, _, err := p.s.gather(ctx, key, name, int64(len(head))/S, upto, meta, have); err != nil {
			return nil, err
		}
		for idx := int64(len(head)) / S; idx <= upto; idx++ {
			head = append(head, have[idx]...)
		}
		starts, need, err := segmentTable(head)
		if err == nil || need == 0 || need > maxSidxBytes || need > meta.Size {
			return starts, err
		}
		upto = (need - 1) / S
	}
	return nil, errNoSidx
}

// segmentTable reads the top-level boxes at the start of an MP4 file up to
// its sidx and returns the offsets at which its segments start, followed by
// the end of the last. When head ends before the sidx does, it returns how
// many bytes it needs.
func segmentTable(head []byte) (starts []int64, need int64, err error) {
	sr := bits.NewFixedSliceReader(head)
	for pos := 0; pos < len(head); {
		if len(head)-pos < 16 {
			return nil, int64(pos) + 16, errNoSidx
		}
		hdr, err := mp4.DecodeHeaderSR(sr)
		if err != nil || hdr.Size > maxSidxBytes {
			return nil, 0, errNoSidx
		}
		switch {
		case hdr.Name == "moof", hdr.Name == "mdat":
			return nil, 0, errNoSidx // media before any sidx
		case uint64(pos)+hdr.Size > uint64(len(head)):
			return nil, int64(pos) + int64(hdr.Size), errNoSidx
		case hdr.Name != "sidx":
			sr.SkipBytes(int(hdr.Size) - hdr.Hdrlen)
			pos += int(hdr.Size)
			continue
		}
		box, err := mp4.DecodeSidxSR(hdr, uint64(pos), sr)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", errNoSidx, err)
		}
		sidx := box.(*mp4.SidxBox)
		off := int64(sidx.AnchorPoint)
		starts = append(make([]int64, 0, len(sidx.SidxRefs)+1), off)
		for _, ref := range sidx.SidxRefs {
			if ref.ReferenceType != 0 {
				return nil, 0, errNoSidx // a hierarchical sidx: not what the packager writes
			}
			off += int64(ref.ReferencedSize)
			starts = append(starts, off)
		}
		return starts, 0, nil
	}
	return nil, int64(len(head)) + 16, errNoSidx
}
