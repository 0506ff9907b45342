package bench

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// ABR tuning: the throughput estimate is an exponentially weighted moving
// average of segment download rates, and a variant is chosen when its
// advertised bandwidth fits in abrSafety of the estimate (hls.js uses
// 0.7 to 0.95 depending on the buffer).
const (
	abrSafety = 0.7
	abrAlpha  = 0.3 // weight of the newest sample
)

// retryPause is how long a listener waits after a failed song before the
// next one, so that a failing server is not hammered in a tight loop.
const retryPause = 200 * time.Millisecond

// listener is one virtual player. It is used by one goroutine.
type listener struct {
	r    *runner
	conn *Conn
	rng  *rand.Rand
	zipf *rand.Zipf
	est  float64 // throughput estimate, bits/s; 0 until the first segment
}

func (r *runner) newListener(seed uint64) *listener {
	l := &listener{r: r, conn: r.client.NewConn(), rng: rand.New(rand.NewPCG(r.opt.Seed, seed))}
	if n := r.src.Len(); r.opt.Zipf > 1 && n > 1 {
		l.zipf = rand.NewZipf(l.rng, r.opt.Zipf, 1, uint64(n-1))
	}
	return l
}

// pick chooses a song: Zipf-distributed over the source's order (the most
// popular first), or uniformly.
func (l *listener) pick() int {
	if l.zipf != nil {
		return int(l.zipf.Uint64())
	}
	return l.rng.IntN(l.r.src.Len())
}

// session plays songs one after another until ctx ends, or n songs when
// n > 0.
func (l *listener) session(ctx context.Context, n int) {
	l.r.rec.Session()
	for i := 0; (n <= 0 || i < n) && ctx.Err() == nil; i++ {
		if !l.play(ctx, l.pick()) {
			sleep(ctx, retryPause)
		}
	}
}

// playback simulates a player's buffer: media is added as segments arrive
// and drains at the playback speed once playing; when it runs dry before
// the song's end, playback stalls until the next segment arrives.
type playback struct {
	speed     float64
	level     float64 // seconds of media buffered
	started   bool
	playing   bool
	last      time.Time
	stalledAt time.Time
}

// advance drains the buffer up to now.
func (p *playback) advance(now time.Time) {
	if p.playing {
		used := now.Sub(p.last).Seconds() * p.speed
		if used >= p.level {
			p.stalledAt = p.last.Add(time.Duration(p.level / p.speed * float64(time.Second)))
			p.level, p.playing = 0, false
		} else {
			p.level -= used
		}
	}
	p.last = now
}

// add buffers sec seconds of media at now; it returns how long playback
// had been stalled, when this segment ends a stall.
func (p *playback) add(now time.Time, sec float64) (stall time.Duration, rebuffered bool) {
	p.advance(now)
	p.level += sec
	switch {
	case !p.started:
		p.started, p.playing = true, true
	case !p.playing:
		p.playing = true
		return now.Sub(p.stalledAt), true
	}
	return 0, false
}

// play plays song i to its end (listening it out at -speed) and reports
// whether it went without a failed request.
func (l *listener) play(ctx context.Context, i int) bool {
	r, rec, conn := l.r, l.r.rec, l.conn
	start := time.Now()
	master, err := r.src.Master(conn, rec, i)
	if err != nil {
		return false
	}
	res := conn.fetch(rec, KindPlaylist, master, Range{0, -1}, "", time.Now())
	if res.Err != "" {
		return false
	}
	var variants []Variant
	if IsMaster(res.Body) {
		if variants, err = ParseMaster(res.Body, master); err != nil {
			rec.Error(ErrPlaylist, 0, 0)
			return false
		}
		slices.SortStableFunc(variants, func(a, b Variant) int { return a.Bandwidth - b.Bandwidth })
	} else {
		variants = []Variant{{URL: master, Kbps: rungOf(master)}}
	}
	media := make([]*MediaPlaylist, len(variants))
	load := func(v int) bool {
		if media[v] != nil {
			return true
		}
		res := conn.fetch(rec, KindPlaylist, variants[v].URL, Range{0, -1}, "", time.Now())
		if res.Err != "" {
			return false
		}
		pl, err := ParseMedia(res.Body, variants[v].URL)
		if err != nil {
			rec.Error(ErrPlaylist, 0, 0)
			return false
		}
		media[v] = pl
		return true
	}
	fetchInit := func(v int) bool {
		in := media[v].Init
		return in == nil || conn.fetch(rec, KindInit, in.URL, in.Range, "", time.Now()).Err == ""
	}

	cur := l.choose(variants, -1)
	if !load(cur) || !fetchInit(cur) {
		return false
	}
	pb := playback{speed: r.opt.Speed}
	maxBuf := r.opt.Buffer.Seconds()
	for j := 0; j < len(media[cur].Segments); j++ {
		if ctx.Err() != nil {
			return true
		}
		seg := media[cur].Segments[j]
		if pb.speed > 0 && pb.started {
			// A player fetches the next segment once it fits in its buffer.
			pb.advance(time.Now())
			if over := pb.level + seg.Duration - maxBuf; over > 0 && !sleep(ctx, time.Duration(over/pb.speed*float64(time.Second))) {
				return true
			}
		}
		switched := false
		if v := l.choose(variants, cur); v != cur {
			if !load(v) || !fetchInit(v) || j >= len(media[v].Segments) {
				return false
			}
			cur, switched = v, true
			seg = media[cur].Segments[j]
		}
		t0 := time.Now()
		res := conn.fetch(rec, KindSegment, seg.URL, seg.Range, "", t0)
		if res.Err != "" {
			return false
		}
		now := time.Now()
		if dt := now.Sub(t0).Seconds(); dt > 0 {
			sample := float64(res.Bytes) * 8 / dt
			if l.est == 0 {
				l.est = sample
			} else {
				l.est = abrAlpha*sample + (1-abrAlpha)*l.est
			}
		}
		rec.Played(seg.Duration, variants[cur].Kbps, switched)
		if j == 0 {
			rec.Song(now.Sub(start))
		}
		if pb.speed > 0 {
			if stall, ok := pb.add(now, seg.Duration); ok {
				rec.Rebuffer(stall)
			}
		}
	}
	if pb.speed > 0 { // listen to the end of the song
		pb.advance(time.Now())
		sleep(ctx, time.Duration(pb.level/pb.speed*float64(time.Second)))
	}
	return true
}

// choose picks a variant: the pinned one, or the highest whose advertised
// bandwidth fits the throughput estimate (the lowest before any estimate).
// variants are sorted by bandwidth.
func (l *listener) choose(variants []Variant, cur int) int {
	switch p := l.r.opt.Variant; p {
	case "", "auto":
	case "lowest":
		return 0
	case "highest":
		return len(variants) - 1
	default:
		want, _ := strconv.Atoi(p) // validated in Run
		best := 0
		for i, v := range variants {
			if abs(v.Kbps-want) < abs(variants[best].Kbps-want) {
				best = i
			}
		}
		return best
	}
	if l.est == 0 {
		if cur >= 0 {
			return cur
		}
		return 0
	}
	best := 0
	for i, v := range variants {
		if float64(v.Bandwidth) <= abrSafety*l.est {
			best = i
		}
	}
	return best
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// sleep waits d or until ctx ends, and reports whether it waited all of d.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
