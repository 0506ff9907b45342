package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"riff/edge/cache"
	"riff/edge/disk"
	"riff/edge/peer"
	"riff/internal/obs"
	"riff/internal/playtoken"
)

// Verifier checks tokens; *playtoken.Verifier is one. Verify must not keep
// token, and should be cheap for a token it has seen (the hot path calls
// it for every request).
type Verifier interface {
	Verify(token []byte, want playtoken.Type) (playtoken.Claims, error)
}

// Config tunes a Server. Zero fields take the defaults shown.
type Config struct {
	// CacheBytes is the cache budget. Default 512 MiB.
	CacheBytes int64
	// SliceBytes is the size of a media slice. Default 1 MiB.
	SliceBytes int64
	// WaitTimeout bounds how long a request waits for origin fetches.
	// Default 15s; it should cover a fetch's attempts at every origin.
	WaitTimeout time.Duration
	// MaxPlaylistBytes caps a playlist or MPD. Default 4 MiB.
	MaxPlaylistBytes int
	// PlaylistMaxAge is the max-age of tier-filtered playlists (master.m3u8,
	// *.mpd), which are private to the token's tier. Default 60s.
	PlaylistMaxAge time.Duration
	// NegativeTTL is how long the edge remembers that an origin had no
	// such object (404), so that requests for missing keys under a valid
	// token do not all reach the origin. Default 10s; negative: off.
	NegativeTTL time.Duration

	// Public listener limits. Defaults: 10s, 30s, 60s, 10000 connections,
	// no per-IP cap.
	ReadTimeout   time.Duration
	WriteTimeout  time.Duration
	IdleTimeout   time.Duration
	MaxConns      int
	MaxConnsPerIP int

	// TLSCertFile and TLSKeyFile, when both set, make Serve speak TLS.
	TLSCertFile, TLSKeyFile string

	// Pprof makes the admin handler serve /debug/pprof/profile and
	// /debug/pprof/heap.
	Pprof bool

	// Disk is the disk tier (package disk), opened by the caller and not
	// yet loaded, or nil for none. NewServer restores the purge
	// generations from it and loads its index; the Server owns it from
	// then on and closes it in Shutdown.
	Disk *disk.Store
	// AccessLog, when set, gets one line per public request (see
	// AccessLog). The Server owns it from NewServer on and closes it in
	// Shutdown.
	AccessLog *AccessLog

	// Peers, when set, is the region's edge fleet (package peer): a slice
	// missing from RAM and disk comes from its owner (peerfill.go).
	Peers *peer.Fleet
	// Prefetch is how many next-segment prefetches may run at once
	// (prefetch.go); 0: no prefetch.
	Prefetch int

	// DiskCopy sends disk-tier answers as copies (read into memory, then
	// writev) instead of with sendfile from the slice files; for
	// measurements.
	DiskCopy bool

	// GoroutinePerConn serves the public listener with fasthttp's
	// goroutine per connection instead of the event loop (loop.go); for
	// measurements. TLS and MaxConnsPerIP use fasthttp alone anyway.
	GoroutinePerConn bool

	// SlabCopy sends RAM hits as copies (writev) even where the slab may
	// lend its pages to the kernel (cache.Slab.Lend: sendfile from its
	// memory file); for measurements.
	SlabCopy bool

	// HeapSlices keeps media slices on the Go heap instead of in a memfd
	// slab (see cache.Slab), which keeps the cache's bytes out of the
	// garbage collector's way; the slab is used on Linux unless this is
	// set. Both are served the same way.
	HeapSlices bool
}

func (c *Config) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 512 << 20
	}
	if c.SliceBytes <= 0 {
		c.SliceBytes = 1 << 20
	}
	if c.MaxPlaylistBytes <= 0 {
		c.MaxPlaylistBytes = 4 << 20
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10000
	}
	def(&c.WaitTimeout, 15*time.Second)
	def(&c.PlaylistMaxAge, 60*time.Second)
	if c.NegativeTTL == 0 {
		c.NegativeTTL = 10 * time.Second
	}
	def(&c.ReadTimeout, 10*time.Second)
	def(&c.WriteTimeout, 30*time.Second)
	def(&c.IdleTimeout, 60*time.Second)
}

// Server is the edge: the public handler (tokens, playlists, byte ranges
// from the slice cache) and the admin handler (metrics, health, purge).
// NewServer has no side effects beyond starting the cache's goroutines;
// Serve and ServeAdmin serve on listeners the caller made; Shutdown stops
// both gracefully. Server is safe for concurrent use.
type Server struct {
	obs      *obs.Obs
	verifier Verifier
	up       Upstream
	now      func() time.Time
	cfg      Config

	gens   *cache.Generations
	cache  *cache.Cache
	slices *cache.Group[sliceKey, fetched]
	disk   *disk.Store // nil: no disk tier
	alog   *AccessLog  // nil: no access log
	peers  *peer.Fleet // nil: no peer fill
	pf     *prefetcher // nil: no prefetch
	fm     fleetMetrics

	public *fasthttp.Server
	admin  *fasthttp.Server
	loop   atomic.Pointer[eventLoop] // set by Serve when the event loop serves

	fetching  atomic.Int64 // flight goroutines running (they use the cache)
	closeOnce sync.Once

	ccPlaylist []byte
	bodies     sync.Pool // *body
	m          serverMetrics
}

type serverMetrics struct {
	hits, misses        *metrics.Counter
	hitBytes, missBytes *metrics.Counter
	diskHits, diskBytes *metrics.Counter
	peerHits, peerBytes *metrics.Counter
	diskSendfile        *metrics.Counter
	coalesced           *metrics.Counter
	direct              *metrics.Counter
	negativeHits        *metrics.Counter
	purges, purgedPfx   *metrics.Counter
	refusals            map[string]*metrics.Counter
	refusedOther        *metrics.Counter
	badPath             *metrics.Counter
	handoffs            [handoffReasons]*metrics.Counter // by why the event loop let a connection go (loop.go)
}

// Refusal reasons beyond playtoken's.
const (
	reasonPrefix = "wrong_prefix" // the token does not open this key
	reasonTier   = "tier"         // the object is above the token's bitrate
	reasonNoAuth = "missing"      // no token at all (purge without Authorization)
)

// NewServer builds an edge around its dependencies: o for logs and
// metrics, v for tokens, up for origin fetches, now for the clock.
func NewServer(o *obs.Obs, v Verifier, up Upstream, cfg Config, now func() time.Time) (*Server, error) {
	if o == nil || v == nil || up == nil {
		return nil, errors.New("edge: NewServer needs obs, verifier and upstream")
	}
	if now == nil {
		now = time.Now
	}
	cfg.defaults()
	gens, err := generationsFrom(cfg.Disk)
	if err != nil {
		return nil, fmt.Errorf("edge: disk tier: %w", err)
	}
	ccfg := cache.Config{MaxBytes: cfg.CacheBytes, AvgEntryBytes: max(cfg.SliceBytes/4, 16<<10)}
	if !cfg.HeapSlices {
		ccfg.SlabSlotBytes, ccfg.SlabLend = cfg.SliceBytes, !cfg.SlabCopy
	}
	c, err := cache.New(ccfg, gens)
	if err != nil && ccfg.SlabSlotBytes > 0 {
		// No memfd (a seccomp profile, an old kernel): serve from the heap.
		o.Logger.Warn("slab unavailable, keeping slices on the heap", "err", err)
		ccfg.SlabSlotBytes = 0
		c, err = cache.New(ccfg, gens)
	}
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	if sl := c.Slab(); sl != nil {
		l := sl.Lending()
		o.Logger.Info("slab", "slot_bytes", sl.SlotBytes(), "lends_pages", l.On, "folio_bytes", l.FolioBytes,
			"huge_pages_advised", l.Advised, "why_not", l.Why)
	}
	if cfg.Disk != nil {
		ls, err := cfg.Disk.Load(func(key string) uint64 { return gens.Of([]byte(key)) })
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("edge: disk tier: %w", err)
		}
		o.Logger.Info("disk tier loaded", "files", ls.Files, "bytes", ls.Bytes, "discarded", ls.Discarded,
			"evicted", ls.Evicted, "took", ls.Took)
	}
	s := &Server{
		obs: o, verifier: v, up: up, now: now, cfg: cfg, disk: cfg.Disk, alog: cfg.AccessLog, peers: cfg.Peers,
		gens: gens, cache: c, slices: cache.NewGroup[sliceKey, fetched](),
		ccPlaylist: fmt.Appendf(nil, "private, max-age=%d", int(cfg.PlaylistMaxAge/time.Second)),
	}
	s.bodies.New = func() any { return newBody(&s.bodies) }
	s.initMetrics()
	s.initFleet()
	o.AddCheck("origin", up.Ready)

	handler := s.Handler
	if s.alog != nil {
		handler = s.logged
	}
	s.public = &fasthttp.Server{
		Handler:                      o.FastMiddleware(handler),
		Name:                         "riff-edge",
		Concurrency:                  cfg.MaxConns,
		MaxConnsPerIP:                cfg.MaxConnsPerIP,
		ReadTimeout:                  cfg.ReadTimeout,
		WriteTimeout:                 cfg.WriteTimeout,
		IdleTimeout:                  cfg.IdleTimeout,
		MaxRequestBodySize:           4 << 10, // GET, HEAD and OPTIONS carry no body
		ReadBufferSize:               8 << 10, // tokens ride in the path
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		TCPKeepalive:                 true,
		DisablePreParseMultipartForm: true,
		Logger:                       fasthttpLogger{o},
	}
	s.admin = &fasthttp.Server{
		Handler:                      s.AdminHandler,
		Name:                         "riff-edge-admin",
		Concurrency:                  256,
		ReadTimeout:                  10 * time.Second,
		WriteTimeout:                 30 * time.Second,
		IdleTimeout:                  60 * time.Second,
		MaxRequestBodySize:           64 << 10,
		CloseOnShutdown:              true,
		DisablePreParseMultipartForm: true,
		Logger:                       fasthttpLogger{o},
	}
	return s, nil
}

// fasthttpLogger sends fasthttp's own messages (mostly connection errors)
// to the debug log.
type fasthttpLogger struct{ o *obs.Obs }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.o.Logger.Debug(fmt.Sprintf(format, args...), "source", "fasthttp")
}

func (s *Server) initMetrics() {
	set := s.obs.Metrics
	m := &s.m
	m.hits = set.NewCounter(`riff_edge_cache_requests_total{result="hit"}`)
	m.misses = set.NewCounter(`riff_edge_cache_requests_total{result="miss"}`)
	m.hitBytes = set.NewCounter(`riff_edge_served_bytes_total{cache="hit"}`)
	m.missBytes = set.NewCounter(`riff_edge_served_bytes_total{cache="miss"}`)
	m.diskHits = set.NewCounter(`riff_edge_cache_requests_total{result="disk"}`)
	m.diskBytes = set.NewCounter(`riff_edge_served_bytes_total{cache="disk"}`)
	m.peerHits = set.NewCounter(`riff_edge_cache_requests_total{result="peer"}`)
	m.peerBytes = set.NewCounter(`riff_edge_served_bytes_total{cache="peer"}`)
	m.diskSendfile = set.NewCounter(`riff_edge_disk_sendfile_responses_total`)
	m.coalesced = set.NewCounter(`riff_edge_coalesced_waiters_total`)
	m.direct = set.NewCounter(`riff_edge_direct_responses_total`)
	m.negativeHits = set.NewCounter(`riff_edge_negative_hits_total`)
	m.purges = set.NewCounter(`riff_edge_purges_total`)
	m.purgedPfx = set.NewCounter(`riff_edge_purged_prefixes_total`)
	m.badPath = set.NewCounter(`riff_edge_bad_paths_total`)
	m.refusals = map[string]*metrics.Counter{}
	for _, r := range []string{
		string(playtoken.ReasonMalformed), string(playtoken.ReasonBadAlg), string(playtoken.ReasonUnknownKID),
		string(playtoken.ReasonBadSignature), string(playtoken.ReasonExpired), string(playtoken.ReasonNotYetValid),
		string(playtoken.ReasonWrongType), string(playtoken.ReasonMissingClaim),
		reasonPrefix, reasonTier, reasonNoAuth,
	} {
		m.refusals[r] = set.NewCounter(fmt.Sprintf(`riff_edge_token_refusals_total{reason=%q}`, r))
	}
	m.refusedOther = set.NewCounter(`riff_edge_token_refusals_total{reason="other"}`)
	c := s.cache
	set.NewGauge(`riff_edge_cache_items`, func() float64 {
		st := c.Stats()
		return float64(st.KeysAdded - min(st.KeysEvicted, st.KeysAdded))
	})
	set.NewGauge(`riff_edge_cache_used_bytes`, func() float64 { return float64(c.Stats().UsedCost) })
	set.NewGauge(`riff_edge_cache_max_bytes`, func() float64 { return float64(c.Stats().MaxCost) })
	set.NewGauge(`riff_edge_cache_evictions_total`, func() float64 { return float64(c.Stats().KeysEvicted) })
	set.NewGauge(`riff_edge_cache_evicted_bytes_total`, func() float64 { return float64(c.Stats().CostEvicted) })
	set.NewGauge(`riff_edge_cache_sets_dropped_total`, func() float64 { return float64(c.Stats().SetsDropped) })
	set.NewGauge(`riff_edge_cache_sets_rejected_total`, func() float64 { return float64(c.Stats().SetsRejected) })
	set.NewGauge(`riff_edge_slab_slots`, func() float64 { return float64(c.Stats().SlabSlots) })
	if sl := c.Slab(); sl != nil && sl.Lending().On {
		folio := float64(sl.Lending().FolioBytes)
		set.NewGauge(`riff_edge_slab_lend_folio_bytes`, func() float64 { return folio })
	}
	set.NewGauge(`riff_edge_slab_used_slots`, func() float64 { return float64(c.Stats().SlabUsed) })
	if d := s.disk; d != nil {
		for _, g := range []struct {
			name string
			f    func(disk.Stats) int64
		}{
			{"riff_edge_disk_files", func(st disk.Stats) int64 { return st.Files }},
			{"riff_edge_disk_used_bytes", func(st disk.Stats) int64 { return st.Bytes }},
			{"riff_edge_disk_max_bytes", func(st disk.Stats) int64 { return st.MaxBytes }},
			{"riff_edge_disk_writes_total", func(st disk.Stats) int64 { return st.Writes }},
			{`riff_edge_disk_errors_total{op="write"}`, func(st disk.Stats) int64 { return st.WriteErrors }},
			{`riff_edge_disk_errors_total{op="read"}`, func(st disk.Stats) int64 { return st.ReadErrors }},
			{"riff_edge_disk_corrupt_total", func(st disk.Stats) int64 { return st.Corrupt }},
			{"riff_edge_disk_dropped_total", func(st disk.Stats) int64 { return st.Dropped }},
			{`riff_edge_disk_reads_total{result="hit"}`, func(st disk.Stats) int64 { return st.Hits }},
			{`riff_edge_disk_reads_total{result="miss"}`, func(st disk.Stats) int64 { return st.Misses }},
			{"riff_edge_disk_evictions_total", func(st disk.Stats) int64 { return st.Evictions }},
			{"riff_edge_disk_evicted_bytes_total", func(st disk.Stats) int64 { return st.EvictedBytes }},
			{"riff_edge_disk_degraded", func(st disk.Stats) int64 {
				if st.Degraded {
					return 1
				}
				return 0
			}},
		} {
			set.NewGauge(g.name, func() float64 { return float64(g.f(d.Stats())) })
		}
	}
	if l := s.alog; l != nil {
		set.NewGauge(`riff_edge_access_log_lines_total`, func() float64 { return float64(l.Stats().Lines) })
		set.NewGauge(`riff_edge_access_log_dropped_total`, func() float64 { return float64(l.Stats().Dropped) })
		set.NewGauge(`riff_edge_access_log_errors_total`, func() float64 { return float64(l.Stats().Errors) })
	}
	set.NewGauge(`riff_edge_loop_connections`, func() float64 {
		if l := s.loop.Load(); l != nil {
			return l.loopConns()
		}
		return 0
	})
	for why, name := range handoffNames {
		m.handoffs[why] = set.NewCounter(fmt.Sprintf(`riff_edge_loop_handoffs_total{reason=%q}`, name))
	}
	g := s.slices
	set.NewGauge(`riff_edge_inflight_slices`, func() float64 { return float64(g.InFlight()) })
}

func (s *Server) countRefusal(reason string) {
	if c, ok := s.m.refusals[reason]; ok {
		c.Inc()
		return
	}
	s.m.refusedOther.Inc()
}

// Serve serves the public handler on ln (TLS when configured) until
// Shutdown: with the event loop (loop.go) on Linux, unless TLS,
// MaxConnsPerIP or GoroutinePerConn ask for fasthttp's own.
func (s *Server) Serve(ln net.Listener) error {
	if s.cfg.TLSCertFile != "" && s.cfg.TLSKeyFile != "" {
		return s.public.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	}
	if s.cfg.GoroutinePerConn || s.cfg.MaxConnsPerIP > 0 {
		return s.public.Serve(publicListener{ln})
	}
	l, err := newEventLoop(s, ln)
	if err != nil {
		s.obs.Logger.Warn("event loop unavailable, serving a goroutine per connection", "err", err)
		return s.public.Serve(publicListener{ln})
	}
	if !s.loop.CompareAndSwap(nil, l) {
		return errors.New("edge: Serve called twice")
	}
	return l.serve()
}

// ServeAdmin serves the admin handler on ln until Shutdown. Give it a
// different listener than Serve, one the public cannot reach.
func (s *Server) ServeAdmin(ln net.Listener) error { return s.admin.Serve(ln) }

// Shutdown stops accepting connections, lets in-flight responses finish,
// waits for running origin fetches, and frees the cache. It returns ctx's
// error if that takes longer than ctx allows (the cache is then left to the
// garbage collector). It is safe to call more than once, and after Serve
// was never called.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if l := s.loop.Load(); l != nil {
		err = l.stop(ctx.Done())
	}
	err = errors.Join(err, s.public.ShutdownWithContext(ctx), s.admin.ShutdownWithContext(ctx))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.fetching.Load() > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
	s.closeOnce.Do(func() {
		if s.alog != nil {
			s.alog.Close()
		}
		s.cache.Close()
		if s.disk != nil {
			if derr := s.disk.Close(); derr != nil {
				s.obs.Logger.Warn("disk tier close", "err", derr)
			}
		}
	})
	return err
}

// purgePrefixes bumps the generation of each prefix (see package cache),
// records them in the disk tier's purge log, and returns the new
// generations. Prefixes must be valid (see purge.go). An error other than
// cache.ErrPrefix means the purge could not be made durable (it is in
// effect in memory; the caller should retry).
func (s *Server) purgePrefixes(prefixes []string) ([]uint64, error) {
	gens := make([]uint64, len(prefixes))
	for i, p := range prefixes {
		g, err := s.gens.Bump(p)
		if err != nil {
			return nil, err
		}
		gens[i] = g
	}
	if err := s.recordPurges(prefixes, gens); err != nil {
		return nil, err
	}
	s.m.purges.Inc()
	s.m.purgedPfx.Add(len(prefixes))
	return gens, nil
}
