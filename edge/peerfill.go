package edge

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"riff/edge/cache"
	"riff/edge/peer"
	"riff/internal/blobkey"
	"riff/internal/httprange"
)

// Peer fill: the tier between this edge's disk and the origin (package
// peer says how owners are chosen and what goes over the wire).
//
// A flight's slices that neither RAM nor the disk tier hold are split into
// runs by owner (rendezvous hashing on key and slice index). A run this
// edge owns goes to the origin, and so does every run when peer fill is
// off. A run another edge owns goes to that edge with one Range request
// carrying the object's generation here; the owner serves it from its
// tiers or its origin through its own coalescing group, so N edges missing
// one slice make one origin fetch between them. If the owner fails (no
// answer in time, a 5xx) or its breaker is open, the run goes to the next
// edge in the slice's ranking, and so on; the ranking reaching this edge
// means the origin. An owner that refuses the generation (409: a purge
// has reached one of the two and not the other), or whose origins failed
// (502), or that answers anything unexpected, sends the run straight to
// the origin. A peer's 404 is the origin's, remembered like one.
//
// Slices from a peer go into RAM here but not to this edge's disk tier:
// the owner keeps them on its disk, so the fleet's disks add up instead of
// holding copies. X-Cache says PEER.

// peerHop marks the context of a peer's request: its flights never go to
// another peer.
type peerHop struct{}

func fromPeer(ctx context.Context) bool {
	v, _ := ctx.Value(peerHop{}).(bool)
	return v
}

// fetchFar gets slices first..last from beyond this edge's own tiers: the
// origin, or, with viaPeers, their owners among the peers. It stores them
// in the cache (and what the origin sent for the disk tier) and returns
// them with the metadata and where the farthest came from.
func (s *Server) fetchFar(ctx context.Context, key string, name cache.Name, first, last int64, viaPeers bool) ([][]byte, *cache.Meta, source, error) {
	if !viaPeers || s.peers == nil || s.peers.Len() < 2 {
		data, meta, err := s.fetchOrigin(ctx, key, name, first, last)
		return data, meta, srcMiss, err
	}
	// Runs of consecutive slices with the same owner, fetched at once.
	type part struct {
		first, last int64
		data        [][]byte
		meta        *cache.Meta
		src         source
		err         error
	}
	var parts []*part
	owner := -1
	for idx := first; idx <= last; idx++ {
		if o := s.peers.Owner(key, idx); o != owner || len(parts) == 0 {
			owner = o
			parts = append(parts, &part{first: idx, last: idx})
		} else {
			parts[len(parts)-1].last = idx
		}
	}
	fetchPart := func(p *part) { p.data, p.meta, p.src, p.err = s.fetchOwned(ctx, key, name, p.first, p.last) }
	if len(parts) == 1 {
		fetchPart(parts[0])
	} else {
		var wg sync.WaitGroup
		for _, p := range parts {
			wg.Go(func() { fetchPart(p) })
		}
		wg.Wait()
	}
	var (
		out  [][]byte
		meta *cache.Meta
		src  source
	)
	for _, p := range parts {
		if p.err != nil {
			return nil, nil, srcMiss, p.err
		}
		if meta == nil {
			meta = p.meta
		} else if !sameObject(meta, p.meta) {
			return nil, nil, srcMiss, errChanged
		}
		src = max(src, p.src)
		out = append(out, p.data...)
		if int64(len(p.data)) < p.last-p.first+1 {
			break // the object ends here
		}
	}
	return out, meta, src, nil
}

// fetchOwned gets slices first..last, which have one owner, from the first
// edge of their ranking that answers; this edge's place in the ranking
// means the origin.
func (s *Server) fetchOwned(ctx context.Context, key string, name cache.Name, first, last int64) ([][]byte, *cache.Meta, source, error) {
	var buf [16]int
	for _, i := range s.peers.Rank(key, first, buf[:0]) {
		if i == s.peers.Self() {
			break
		}
		data, meta, err := s.fetchPeer(ctx, i, key, name, first, last)
		switch {
		case err == nil:
			return data, meta, srcPeer, nil
		case errors.Is(err, errNotFound):
			s.rememberMissing(name, err)
			return nil, nil, srcMiss, err
		case errors.Is(err, peer.ErrOpen), errors.Is(err, peer.ErrPeer):
			s.fm.peerFailovers.Inc()
			continue // the next edge in the ranking
		}
		s.obs.Logger.Debug("peer fill: going to the origin", "peer", s.peers.Name(i), "err", err)
		s.fm.peerRefusals.Inc()
		break
	}
	data, meta, err := s.fetchOrigin(ctx, key, name, first, last)
	return data, meta, srcMiss, err
}

// errPeerRefused: a peer answered but not with the slices (409, 502, a
// bad answer).
var errPeerRefused = errors.New("edge: peer refused")

// fetchPeer asks peer i for slices first..last and keeps them in RAM.
func (s *Server) fetchPeer(ctx context.Context, i int, key string, name cache.Name, first, last int64) ([][]byte, *cache.Meta, error) {
	S := s.cfg.SliceBytes
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	if err := s.peers.Fetch(ctx, i, key, name.Gen(), first*S, (last+1)*S-1, resp); err != nil {
		return nil, nil, err
	}
	switch resp.StatusCode() {
	case fasthttp.StatusPartialContent, fasthttp.StatusRequestedRangeNotSatisfiable, fasthttp.StatusNotFound:
	default:
		return nil, nil, errPeerRefused
	}
	res, err := readFetch(resp, s.peers.Name(i), key, first*S, (last+1)*S-1)
	if err != nil {
		if errors.Is(err, errNotFound) {
			return nil, nil, err
		}
		return nil, nil, errors.Join(errPeerRefused, err)
	}
	s.fm.peerFetches.Inc()
	meta := &res.Meta
	if res.Status == fasthttp.StatusRequestedRangeNotSatisfiable {
		return nil, meta, nil
	}
	return s.keepSlices(key, name, meta, first, last, res.Body, res.Start, false), meta, nil
}

var (
	hPeerSecret = []byte(peer.SecretHeader)
	vConflict   = "generation mismatch\n"
)

// servePeer answers a peer's request on the admin listener (see package
// peer for the wire): the slices the Range names, from this edge's tiers or
// its origin, never from another peer.
func (s *Server) servePeer(ctx *fasthttp.RequestCtx) {
	if !s.peers.Authorized(ctx.Request.Header.PeekBytes(hPeerSecret)) {
		s.fm.peerUnauthorized.Inc()
		s.plainError(ctx, fasthttp.StatusForbidden, "forbidden\n")
		return
	}
	key, gen, ok := peer.ParseRequest(ctx.Path(), ctx.QueryArgs())
	if !ok || !validKey(key) || blobkey.KindOf([]byte(key)) != blobkey.KindMedia || !ctx.IsGet() {
		s.plainError(ctx, fasthttp.StatusBadRequest, "bad peer request\n")
		return
	}
	S := s.cfg.SliceBytes
	spec, ok := httprange.ParseSpec(ctx.Request.Header.PeekBytes(hRange))
	if !ok || spec.IsSuffix() || spec.Last < 0 || spec.First%S != 0 || (spec.Last+1)%S != 0 || spec.Last-spec.First >= maxRunBytes {
		s.plainError(ctx, fasthttp.StatusBadRequest, "want a range of whole slices\n")
		return
	}
	name := s.cache.Name([]byte(key))
	if name.Gen() != gen {
		s.fm.peerConflicts.Inc()
		s.plainError(ctx, fasthttp.StatusConflict, vConflict)
		return
	}
	first, last := spec.First/S, spec.Last/S
	have := map[int64][]byte{}
	meta, src, err := s.gather(context.WithValue(ctx, peerHop{}, true), key, name, first, last, nil, have)
	if err != nil {
		if errors.Is(err, errNotFound) {
			s.plainError(ctx, fasthttp.StatusNotFound, "not found\n")
			return
		}
		s.obs.Logger.Warn("peer request failed", "key", key, "err", err)
		s.plainError(ctx, fasthttp.StatusBadGateway, "bad gateway\n")
		return
	}
	s.fm.peerServed.Inc()
	h := &ctx.Response.Header
	h.SetCanonical(hXCache, src.header())
	if first*S >= meta.Size {
		ctx.SetStatusCode(fasthttp.StatusRequestedRangeNotSatisfiable)
		h.SetCanonical(hContentRange, httprange.AppendUnsatisfiedContentRange(nil, meta.Size))
		return
	}
	end := min(spec.Last, meta.Size-1)
	body := make([]byte, 0, end-first*S+1)
	for idx := first; idx <= min(last, lastIndex(meta.Size, S)); idx++ {
		body = append(body, have[idx]...)
	}
	ctx.SetStatusCode(fasthttp.StatusPartialContent)
	h.SetCanonical(hContentRange, httprange.Range{Start: first * S, Length: end - first*S + 1}.AppendContentRange(nil, meta.Size))
	if meta.ETag != "" {
		h.SetCanonical(hETag, []byte(meta.ETag))
	}
	if meta.LastModified != "" {
		h.SetCanonical(hLastModified, []byte(meta.LastModified))
	}
	if meta.ContentType != "" {
		h.SetContentType(meta.ContentType)
	}
	ctx.SetBody(body)
}

// fleetMetrics count peer fill and prefetch.
type fleetMetrics struct {
	peerFetches      *metrics.Counter // runs fetched from a peer
	peerFailovers    *metrics.Counter // a peer failed or its breaker was open: next in the ranking
	peerRefusals     *metrics.Counter // a peer answered 409, 502 or nonsense: the origin
	peerServed       *metrics.Counter // peers' requests answered here
	peerConflicts    *metrics.Counter // peers' requests refused for their generation
	peerUnauthorized *metrics.Counter // peers' requests without the secret
}

// initFleet registers peer fill's metrics and starts the prefetcher.
func (s *Server) initFleet() {
	set := s.obs.Metrics
	s.fm = fleetMetrics{
		peerFetches:      set.NewCounter(`riff_edge_peer_fills_total`),
		peerFailovers:    set.NewCounter(`riff_edge_peer_failovers_total`),
		peerRefusals:     set.NewCounter(`riff_edge_peer_refusals_total`),
		peerServed:       set.NewCounter(`riff_edge_peer_requests_total{result="served"}`),
		peerConflicts:    set.NewCounter(`riff_edge_peer_requests_total{result="generation"}`),
		peerUnauthorized: set.NewCounter(`riff_edge_peer_requests_total{result="unauthorized"}`),
	}
	if s.peers != nil {
		for i := range s.peers.Len() {
			if i == s.peers.Self() {
				continue
			}
			if br, ok := s.peers.Breaker(i).(*Breaker); ok {
				set.NewGauge(fmt.Sprintf(`riff_edge_peer_breaker_state{peer=%q}`, s.peers.Name(i)), func() float64 { return float64(br.State()) })
			}
		}
	}
	s.pf = newPrefetcher(s, set, s.cfg.Prefetch)
}
