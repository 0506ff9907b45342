package bench

import (
	"maps"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Kind is what a request fetched.
type Kind uint8

// Request kinds.
const (
	KindPlaylist Kind = iota // master or media playlist, MPD
	KindInit                 // init section (EXT-X-MAP)
	KindSegment              // media segment (a byte range of a rendition)
	KindObject               // anything else, e.g. a whole file from a URL list
	KindAPI                  // catalogd: login, search, song
	numKinds
)

var kindNames = [numKinds]string{"playlist", "init", "segment", "object", "api"}

func (k Kind) String() string { return kindNames[k] }

// CacheStatus is the X-Cache header of a response, reduced.
type CacheStatus uint8

// Cache statuses: a response without X-Cache is CacheNone. CacheDisk
// (riff edge's disk tier) is the edge's own cache too; CachePeer came from
// another edge of the fleet (peer fill): not this edge's cache, not the
// origin either.
const (
	CacheNone CacheStatus = iota
	CacheHit
	CacheDisk
	CachePeer
	CacheMiss
	numCache
)

var cacheNames = [numCache]string{"-", "HIT", "DISK", "PEER", "MISS"}

func (c CacheStatus) String() string { return cacheNames[c] }

// hit reports whether c was answered from the edge's own cache (RAM or
// disk): what the hit ratio counts.
func (c CacheStatus) hit() bool { return c == CacheHit || c == CacheDisk }

// cacheStatus maps an X-Cache value: riff edge says HIT, DISK, PEER or
// MISS; nginx says HIT, MISS, EXPIRED, STALE, UPDATING, REVALIDATED or
// BYPASS, of which only HIT (and STALE, UPDATING, REVALIDATED, served from
// the cache) did not wait for the origin.
func cacheStatus(v []byte) CacheStatus {
	switch string(v) {
	case "":
		return CacheNone
	case "HIT", "hit", "STALE", "UPDATING", "REVALIDATED":
		return CacheHit
	case "DISK":
		return CacheDisk
	case "PEER":
		return CachePeer
	default:
		return CacheMiss
	}
}

// Latencies are recorded in microseconds, from 1 µs to 10 minutes, with 3
// significant digits (HDR histograms: constant memory whatever the run's
// length).
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

func recordDur(h *hdrhistogram.Histogram, d time.Duration) {
	us := d.Microseconds()
	if us < histMin {
		us = histMin
	}
	if us > histMax {
		us = histMax
	}
	h.RecordValue(us) // in range by construction
}

// cell is the tally of one request kind with one cache status.
type cell struct {
	requests, bytes int64
	lat             *hdrhistogram.Histogram
}

// Recorder collects the measurements of a run. It is safe for concurrent
// use; a request costs one short critical section and no allocation.
type Recorder struct {
	mu     sync.Mutex
	cells  [numKinds][numCache]cell
	all    *hdrhistogram.Histogram
	errs   map[string]int64
	nerrs  int64
	ebytes int64  // received in failed requests
	window window // since the last Tick

	// Listener QoE (listen scenario).
	speed                                float64 // playback speed (-speed), set before the run
	startup                              *hdrhistogram.Histogram
	sessions, songs, rebuffers, switches int64
	stall                                time.Duration // wall time stalled
	played, kbpsSeconds                  float64       // media seconds fetched; Σ kbps × segment seconds
}

// window is what happened since the last Tick: the progress line and the
// time series.
type window struct {
	requests, bytes, errors, hits, cached int64
	lat                                   *hdrhistogram.Histogram
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	r := &Recorder{all: newHist(), startup: newHist(), errs: map[string]int64{}}
	r.window.lat = newHist()
	for k := range r.cells {
		for c := range r.cells[k] {
			r.cells[k][c].lat = newHist()
		}
	}
	return r
}

// Request records one answered request.
func (r *Recorder) Request(k Kind, c CacheStatus, n int64, lat time.Duration) {
	r.mu.Lock()
	cl := &r.cells[k][c]
	cl.requests++
	cl.bytes += n
	recordDur(cl.lat, lat)
	recordDur(r.all, lat)
	recordDur(r.window.lat, lat)
	r.window.requests++
	r.window.bytes += n
	if c != CacheNone {
		r.window.cached++
		if c.hit() {
			r.window.hits++
		}
	}
	r.mu.Unlock()
}

// Error records a failed request. Its latency counts too (a
// timeout is as slow as its timeout); bytes that arrived before the
// failure are counted as received.
func (r *Recorder) Error(kind string, n int64, lat time.Duration) {
	r.mu.Lock()
	r.errs[kind]++
	r.nerrs++
	r.window.errors++
	r.window.bytes += n
	recordDur(r.all, lat)
	recordDur(r.window.lat, lat)
	r.ebytes += n
	r.mu.Unlock()
}

// Session records that a listener arrived.
func (r *Recorder) Session() {
	r.mu.Lock()
	r.sessions++
	r.mu.Unlock()
}

// Song records that a listener started a song; startup is the time from
// asking for it until it could play (init and first segment received).
func (r *Recorder) Song(startup time.Duration) {
	r.mu.Lock()
	r.songs++
	recordDur(r.startup, startup)
	r.mu.Unlock()
}

// Played records a media segment a listener fetched at kbps.
func (r *Recorder) Played(seconds float64, kbps int, switched bool) {
	r.mu.Lock()
	r.played += seconds
	r.kbpsSeconds += float64(kbps) * seconds
	if switched {
		r.switches++
	}
	r.mu.Unlock()
}

// Rebuffer records a stall of a listener's playback that lasted d.
func (r *Recorder) Rebuffer(d time.Duration) {
	r.mu.Lock()
	r.rebuffers++
	r.stall += d
	r.mu.Unlock()
}

// Reset forgets everything (the end of the warm-up).
func (r *Recorder) Reset() {
	fresh := NewRecorder()
	r.mu.Lock()
	r.cells, r.all, r.errs, r.nerrs, r.ebytes, r.window = fresh.cells, fresh.all, fresh.errs, 0, 0, fresh.window
	r.startup, r.songs, r.rebuffers, r.switches = fresh.startup, 0, 0, 0 // sessions span the warm-up
	r.stall, r.played, r.kbpsSeconds = 0, 0, 0
	r.mu.Unlock()
}

// Tick returns the window since the previous Tick as a Sample at t and
// starts a new one.
func (r *Recorder) Tick(t, dt time.Duration) Sample {
	r.mu.Lock()
	w := r.window
	s := Sample{
		T:        t.Seconds(),
		Requests: w.requests, Errors: w.errors, Bytes: w.bytes,
		P50: ms(w.lat.ValueAtQuantile(50)), P99: ms(w.lat.ValueAtQuantile(99)), Max: ms(w.lat.Max()),
		HitRatio: -1,
	}
	if w.cached > 0 {
		s.HitRatio = float64(w.hits) / float64(w.cached)
	}
	w.lat.Reset()
	r.window = window{lat: w.lat}
	r.mu.Unlock()
	if sec := dt.Seconds(); sec > 0 {
		s.RPS = float64(s.Requests) / sec
		s.MBps = float64(s.Bytes) / sec / 1e6
	}
	return s
}

// ms converts microseconds to milliseconds.
func ms(us int64) float64 { return float64(us) / 1000 }

// summarize fills the measurement part of a report.
func (r *Recorder) summarize(rep *Report, elapsed time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var hits, cached, hitBytes, cachedBytes int64
	for k := range numKinds {
		var kr KindReport
		kr.Kind = Kind(k).String()
		merged := newHist()
		for c := range numCache {
			cl := &r.cells[k][c]
			if cl.requests == 0 {
				continue
			}
			merged.Merge(cl.lat)
			kr.Requests += cl.requests
			kr.Bytes += cl.bytes
			kr.ByCache = append(kr.ByCache, CacheReport{
				Cache: CacheStatus(c).String(), Requests: cl.requests, Bytes: cl.bytes, Latency: latencyOf(cl.lat),
			})
			rep.Requests += cl.requests
			if c != CacheNone {
				cached += cl.requests
				cachedBytes += cl.bytes
				if CacheStatus(c).hit() {
					hits += cl.requests
					hitBytes += cl.bytes
				}
			}
		}
		rep.Bytes += kr.Bytes
		if kr.Requests > 0 {
			kr.Latency = latencyOf(merged)
			rep.ByKind = append(rep.ByKind, kr)
		}
	}
	rep.Bytes += r.ebytes
	rep.Errors = r.nerrs
	rep.ErrorsByKind = maps.Clone(r.errs)
	if total := rep.Requests + rep.Errors; total > 0 {
		rep.ErrorRate = float64(rep.Errors) / float64(total)
	}
	rep.Latency = latencyOf(r.all)
	rep.HitRatio, rep.ByteHitRatio = -1, -1
	if cached > 0 {
		rep.HitRatio = float64(hits) / float64(cached)
	}
	if cachedBytes > 0 {
		rep.ByteHitRatio = float64(hitBytes) / float64(cachedBytes)
	}
	if sec := elapsed.Seconds(); sec > 0 {
		rep.RPS = float64(rep.Requests) / sec
		rep.MBps = float64(rep.Bytes) / sec / 1e6
	}
	if r.songs > 0 || r.sessions > 0 {
		q := &QoE{
			Sessions: r.sessions, Songs: r.songs, Startup: latencyOf(r.startup), Rebuffers: r.rebuffers,
			StallSeconds: r.stall.Seconds(), PlayedSeconds: r.played, Switches: r.switches,
		}
		// In the listener's (wall-clock) time: media plays at -speed.
		if p := q.StallSeconds; p > 0 && r.speed > 0 {
			q.RebufferRatio = p / (p + q.PlayedSeconds/r.speed)
		}
		if q.PlayedSeconds > 0 {
			q.AvgKbps = r.kbpsSeconds / q.PlayedSeconds
		}
		rep.Listen = q
	}
}

func latencyOf(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		Mean:  h.Mean() / 1000,
		P50:   ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()),
	}
}
