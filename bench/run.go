package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"riff/internal/config"
)

// Options configure a run. Run fills them from flags, defaults included;
// Execute uses them as given, except that it fills SessionSongs,
// MaxSessions and Buffer when they are zero.
type Options struct {
	Scenario string // "listen" or "flat"

	// Sources: a catalogd (API, Email, Password, Queries, Songs), a URL
	// file, or playlist URLs.
	API             string
	Email, Password string
	Queries         []string
	Songs           int
	URLFile         string
	Playlists       []string

	Duration, Warmup, Timeout time.Duration
	Conns                     int     // connections per host; flat: concurrent requests
	Rate                      float64 // flat: requests/s (0: closed loop); listen: sessions/s (0: closed sessions)
	Listeners                 int     // listen, closed: concurrent listeners
	SessionSongs              int     // listen, open: songs per session
	MaxSessions               int     // listen, open: cap on concurrent sessions
	Zipf                      float64 // popularity exponent (> 1), or uniform
	Variant                   string  // auto, lowest, highest or a kbps
	Speed                     float64 // listen: playback speed (0: flat out)
	Buffer                    time.Duration
	Seed                      uint64

	EdgeMetrics, OriginMetrics string // /metrics URLs for origin offload

	MaxP99           time.Duration // 0: no check
	MaxErrorRate     float64       // < 0: no check
	MinHitRatio      float64       // < 0: no check
	MaxRebufferRatio float64       // < 0: no check

	Quiet bool // no progress line
}

// ErrThresholds is returned (wrapped) by Run when the run missed a
// threshold: the process exits non-zero.
var ErrThresholds = errors.New("thresholds missed")

// runner is one run in progress.
type runner struct {
	opt    Options
	client *Client
	rec    *Recorder
	src    source       // listen
	tgts   []target     // flat
	sent   atomic.Int64 // flat: requests sent, warm-up included
}

// Execute runs one benchmark and returns its report, with the thresholds
// evaluated. Progress lines go to progress (one a second) unless
// opt.Quiet. It returns an error only when the run could not take place
// (no source, catalogd login failed, …); failed requests are measurements.
func Execute(ctx context.Context, opt Options, progress io.Writer) (*Report, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	conns := opt.Conns
	if opt.Scenario == "listen" { // a player has its own connection
		if opt.Rate > 0 {
			conns = max(conns, opt.MaxSessions)
		} else {
			conns = max(conns, opt.Listeners)
		}
	}
	r := &runner{opt: opt, client: NewClient(opt.Timeout, conns), rec: NewRecorder()}
	r.rec.speed = opt.Speed
	defer r.client.Close()
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}

	rep := &Report{Scenario: opt.Scenario, Target: r.targetName(), Settings: opt.settings()}
	start := time.Now()
	measure := start.Add(opt.Warmup)
	end := measure.Add(opt.Duration)
	loadCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	var before metricsSnapshot
	var cpu0 cpuTimes
	if opt.Warmup <= 0 {
		before, cpu0 = r.snapshot(ctx), readCPU()
	}
	var wg sync.WaitGroup
	if opt.Scenario == "flat" {
		r.flat(loadCtx, &wg, start, end)
	} else {
		r.listen(loadCtx, &wg)
	}
	tick := time.NewTicker(time.Second)
	last, warm := start, opt.Warmup <= 0
	for loop := true; loop; {
		select {
		case <-loadCtx.Done():
			loop = false
		case now := <-tick.C:
			if !warm && !now.Before(measure) {
				warm = true
				r.rec.Reset()
				before, cpu0 = r.snapshot(ctx), readCPU()
				measure, last = now, now
				continue
			}
			s := r.rec.Tick(now.Sub(measure), now.Sub(last))
			last = now
			if warm {
				rep.Series = append(rep.Series, s)
			}
			if !opt.Quiet {
				progressLine(progress, s, warm)
			}
		}
	}
	tick.Stop()
	wg.Wait() // requests in flight finish (each within -timeout)
	stop := time.Now()
	cpu1 := readCPU()
	if stop.After(end) {
		stop = end
	}
	if !warm { // cancelled during the warm-up
		measure = start
		cpu0 = cpuTimes{}
	}
	elapsed := stop.Sub(measure)
	// The last partial second joins the series only when it is long
	// enough for its rates to mean something (its requests count anyway).
	if dt := stop.Sub(last); dt >= 500*time.Millisecond && warm {
		rep.Series = append(rep.Series, r.rec.Tick(stop.Sub(measure), dt))
	}
	rep.StartedAt, rep.Seconds = measure, elapsed.Seconds()
	r.rec.summarize(rep, elapsed)
	r.originReport(ctx, rep, before)
	rep.CPU = cpuReport(cpu0, cpu1, elapsed)
	if rep.CPU.Saturated {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf(
			"bench used %.2f of its %d cores: the generator was saturated, so these numbers may be bench's limit rather than the server's (give bench more cores, or lower -conns/-listeners)",
			rep.CPU.Cores, rep.CPU.GOMAXPROCS))
	}
	if ctx.Err() != nil {
		rep.Warnings = append(rep.Warnings, "interrupted before the planned end")
	} else if opt.Scenario == "flat" && opt.Rate > 0 {
		// Requests still waiting for a connection at the end were never
		// sent; a server that fell that far behind is slower than the
		// histograms can say.
		scheduled := int64(opt.Rate * end.Sub(start).Seconds())
		if rep.Unsent = max(0, scheduled-r.sent.Load()); rep.Unsent > scheduled/100 {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf(
				"the server fell behind the rate: %d of %d scheduled requests were not sent before the end, and their latency is not in the histograms",
				rep.Unsent, scheduled))
		}
	}
	rep.Thresholds = opt.check(rep)
	return rep, nil
}

func (o *Options) validate() error {
	switch o.Scenario {
	case "listen", "flat":
	default:
		return fmt.Errorf("bench: unknown scenario %q: want listen or flat", o.Scenario)
	}
	n := 0
	for _, set := range []bool{o.API != "", o.URLFile != "", len(o.Playlists) > 0} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return errors.New("bench: give exactly one source: -catalogd URL, -urls FILE or -playlist URLs")
	case o.API != "" && (o.Email == "" || o.Password == ""):
		return errors.New("bench: -catalogd needs -email and -password (a listener account)")
	case o.Duration <= 0:
		return errors.New("bench: -duration must be positive")
	case o.Timeout <= 0 || o.Conns < 1:
		return errors.New("bench: -timeout must be positive and -conns at least 1")
	case o.Rate < 0 || o.Speed < 0:
		return errors.New("bench: -rate and -speed must not be negative")
	case o.Scenario == "listen" && o.Rate == 0 && o.Listeners < 1:
		return errors.New("bench: -listeners must be at least 1")
	case o.Zipf != 0 && o.Zipf <= 1:
		return fmt.Errorf("bench: -zipf %v: want an exponent above 1, or 0 for uniform popularity", o.Zipf)
	}
	switch o.Variant {
	case "", "auto", "lowest", "highest":
	default:
		if k, err := strconv.Atoi(o.Variant); err != nil || k <= 0 {
			return fmt.Errorf("bench: -variant %q: want auto, lowest, highest or a bitrate in kbps like 128", o.Variant)
		}
	}
	if o.SessionSongs < 1 {
		o.SessionSongs = 1
	}
	if o.MaxSessions < 1 {
		o.MaxSessions = 10000
	}
	if o.Buffer <= 0 {
		o.Buffer = 30 * time.Second
	}
	return nil
}

// prepare finds what to request.
func (r *runner) prepare(ctx context.Context) error {
	opt := r.opt
	conn := r.client.NewConn()
	var masters []string
	switch {
	case opt.API != "":
		cat, err := openCatalog(ctx, opt.API, opt.Email, opt.Password, opt.Queries, opt.Songs, opt.Timeout)
		if err != nil {
			return err
		}
		if opt.Scenario == "listen" {
			r.src = cat
			return nil
		}
		setup := NewRecorder() // these requests are not measurements
		for i := range cat.Len() {
			m, err := cat.Master(conn, setup, i)
			if err != nil {
				return err
			}
			masters = append(masters, m)
		}
	case opt.URLFile != "":
		tgts, err := readURLFile(opt.URLFile)
		if err != nil {
			return err
		}
		if opt.Scenario == "listen" {
			var us urlSource
			for _, t := range tgts {
				us = append(us, t.url)
			}
			r.src = us
			return nil
		}
		r.tgts = tgts
	default:
		if opt.Scenario == "listen" {
			r.src = urlSource(opt.Playlists)
			return nil
		}
		masters = opt.Playlists
	}
	if len(masters) > 0 {
		tgts, err := expand(conn, masters)
		if err != nil {
			return err
		}
		r.tgts = tgts
	}
	// A fixed shuffle: consecutive requests spread over objects as
	// players' would, the same in every run with the same -seed.
	rng := rand.New(rand.NewPCG(opt.Seed, 0))
	rng.Shuffle(len(r.tgts), func(i, j int) { r.tgts[i], r.tgts[j] = r.tgts[j], r.tgts[i] })
	return nil
}

func (r *runner) targetName() string {
	switch {
	case r.opt.API != "":
		return r.opt.API
	case r.opt.URLFile != "":
		return r.opt.URLFile
	default:
		return redactToken(strings.Join(r.opt.Playlists, ","))
	}
}

// redactToken shortens the playback tokens in /t/{token}/ URLs, which
// are long and not for reports.
func redactToken(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "/t/")
		if i < 0 {
			break
		}
		j := strings.IndexByte(s[i+3:], '/')
		if j < 0 {
			break
		}
		b.WriteString(s[:i+3])
		b.WriteString("…")
		s = s[i+3+j:]
	}
	b.WriteString(s)
	return b.String()
}

// flat sends requests at -rate from the start of the schedule, -conns at
// a time. Each request has a scheduled send time; a worker still busy with
// an earlier answer at that time counts the latency from it, so a server
// that stalls cannot hide the requests that should have been sent
// meanwhile (coordinated omission); a worker that was waiting for it
// counts from when its timer woke it. With -rate 0 each of -conns workers
// sends its next request when the previous one returns.
func (r *runner) flat(ctx context.Context, wg *sync.WaitGroup, start, end time.Time) {
	var next atomic.Int64
	interval := time.Duration(0)
	if r.opt.Rate > 0 {
		interval = time.Duration(float64(time.Second) / r.opt.Rate)
	}
	for w := range r.opt.Conns {
		wg.Go(func() {
			conn := r.client.NewConn()
			rng := rand.New(rand.NewPCG(r.opt.Seed, uint64(w)+1))
			var zipf *rand.Zipf
			if r.opt.Zipf > 1 && len(r.tgts) > 1 {
				zipf = rand.NewZipf(rng, r.opt.Zipf, 1, uint64(len(r.tgts)-1))
			}
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				sched := time.Now()
				if interval > 0 {
					sched = start.Add(time.Duration(i) * interval)
					if !sched.Before(end) {
						return
					}
					if wait := time.Until(sched); wait > 0 {
						if !sleep(ctx, wait) {
							return
						}
						// The worker was free before the send time: the
						// server held nothing up, and what the timer adds
						// past it is this process's own lateness (an idle
						// Go process wakes its timers with millisecond
						// granularity), not the server's to answer for.
						sched = time.Now()
					}
				}
				t := &r.tgts[int(i%int64(len(r.tgts)))]
				if zipf != nil {
					t = &r.tgts[zipf.Uint64()]
				}
				r.sent.Add(1)
				conn.fetch(r.rec, t.kind, t.url, t.rng, "", sched)
			}
		})
	}
}

// listen runs -listeners closed sessions, or session arrivals at -rate a
// second (a Poisson process), each playing -session-songs songs.
func (r *runner) listen(ctx context.Context, wg *sync.WaitGroup) {
	if r.opt.Rate <= 0 {
		for i := range r.opt.Listeners {
			wg.Go(func() { r.newListener(uint64(i)+1).session(ctx, 0) })
		}
		return
	}
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(r.opt.Seed, 1<<32))
		active := make(chan struct{}, r.opt.MaxSessions)
		var id uint64
		for {
			gap := time.Duration(rng.ExpFloat64() / r.opt.Rate * float64(time.Second))
			if !sleep(ctx, gap) {
				return
			}
			select {
			case active <- struct{}{}:
			default:
				continue // at the cap: this arrival is turned away
			}
			id++
			seed := id
			wg.Go(func() {
				defer func() { <-active }()
				r.newListener(seed).session(ctx, r.opt.SessionSongs)
			})
		}
	})
}

// progressLine prints one second of the run.
func progressLine(w io.Writer, s Sample, warm bool) {
	phase := ""
	if !warm {
		phase = " (warm-up)"
	}
	fmt.Fprintf(w, "%6.0fs  %8.0f req/s  %8.1f MB/s  p99 %8s  errors %d  hit %s%s\n",
		s.T, s.RPS, s.MBps, msStr(s.P99), s.Errors, ratio(s.HitRatio), phase)
}

func (o Options) settings() string {
	var b strings.Builder
	if o.Scenario == "flat" {
		if o.Rate > 0 {
			fmt.Fprintf(&b, "rate %.0f/s, ", o.Rate)
		} else {
			b.WriteString("closed loop, ")
		}
		fmt.Fprintf(&b, "%d conns", o.Conns)
	} else {
		if o.Rate > 0 {
			fmt.Fprintf(&b, "%.2f sessions/s of %d songs", o.Rate, o.SessionSongs)
		} else {
			fmt.Fprintf(&b, "%d listeners", o.Listeners)
		}
		fmt.Fprintf(&b, ", speed %gx, variant %s, buffer %s", o.Speed, cmpOr(o.Variant, "auto"), o.Buffer)
	}
	if o.Zipf > 1 {
		fmt.Fprintf(&b, ", zipf %g", o.Zipf)
	}
	if o.Warmup > 0 {
		fmt.Fprintf(&b, ", warm-up %s", o.Warmup)
	}
	return b.String()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// check evaluates the thresholds.
func (o Options) check(rep *Report) []Check {
	var out []Check
	if o.MaxP99 > 0 {
		limit := float64(o.MaxP99) / float64(time.Millisecond)
		out = append(out, Check{Name: "max-p99", Limit: limit, Value: rep.Latency.P99, OK: rep.Latency.P99 <= limit && rep.Latency.Count > 0})
	}
	if o.MaxErrorRate >= 0 {
		out = append(out, Check{Name: "max-error-rate", Limit: o.MaxErrorRate, Value: rep.ErrorRate,
			OK: rep.ErrorRate <= o.MaxErrorRate && rep.Requests+rep.Errors > 0})
	}
	if o.MinHitRatio >= 0 {
		out = append(out, Check{Name: "min-hit-ratio", Limit: o.MinHitRatio, Value: rep.HitRatio, OK: rep.HitRatio >= o.MinHitRatio})
	}
	if o.MaxRebufferRatio >= 0 {
		v := -1.0
		if rep.Listen != nil {
			v = rep.Listen.RebufferRatio
		}
		out = append(out, Check{Name: "max-rebuffer-ratio", Limit: o.MaxRebufferRatio, Value: v, OK: v >= 0 && v <= o.MaxRebufferRatio})
	}
	return out
}

// optFloat is a float flag that is "unset" (-1) unless given.
type optFloat struct{ v *float64 }

func (f optFloat) String() string {
	if f.v == nil || *f.v < 0 {
		return ""
	}
	return strconv.FormatFloat(*f.v, 'g', -1, 64)
}

func (f optFloat) Set(s string) error {
	s = strings.TrimSpace(s)
	scale := 1.0
	if p, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = p, 0.01
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return errors.New("want a number ≥ 0, e.g. 0.9 or 90%")
	}
	*f.v = v * scale
	return nil
}

// Run is `riff bench`: it parses flags (see -help), runs the scenario,
// prints a progress line a second to stderr and the report to stdout,
// writes -json and -html files, and returns an error wrapping
// ErrThresholds when a threshold was missed. It is parse → run: parseFlags
// checks every flag before Execute opens a connection.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	rep, err := Execute(ctx, cfg.opt, stderr)
	if err != nil {
		return err
	}
	rep.WriteTable(stdout)
	if cfg.jsonPath != "" {
		if err := rep.WriteJSON(cfg.jsonPath); err != nil {
			return err
		}
	}
	if cfg.htmlPath != "" {
		if err := rep.WriteHTML(cfg.htmlPath); err != nil {
			return err
		}
	}
	if failed := rep.Failed(); len(failed) > 0 {
		names := make([]string, len(failed))
		for i, c := range failed {
			names[i] = c.Name
		}
		return fmt.Errorf("%w: %s", ErrThresholds, strings.Join(names, ", "))
	}
	return nil
}

// runConfig is what Run's arguments say, checked.
type runConfig struct {
	opt                Options // validated
	jsonPath, htmlPath string  // report files, "" for none
}

// parseFlags reads the scenario and the flags (and RIFF_BENCH_* and a
// -config file) and checks them as Execute will (Options.validate). It
// opens nothing; with -help it prints the help text to stderr.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (runConfig, error) {
	opt := Options{Scenario: "listen", MaxErrorRate: -1, MinHitRatio: -1, MaxRebufferRatio: -1}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		opt.Scenario, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&opt.API, "catalogd", "", "source: catalogd base `URL`; bench logs in, searches songs and mints playback URLs through the API\n(e.g. -catalogd http://127.0.0.1:8080 -email demo@riff.dev -password riff-demo-password)")
	fs.StringVar(&opt.Email, "email", "", "catalogd account `email` the listeners share (catalogd rate-limits logins, so bench logs in once), e.g. demo@riff.dev")
	fs.StringVar(&opt.Password, "password", "", "catalogd account `password`, e.g. riff-demo-password for riff dev's demo account")
	queries := fs.String("query", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z", "catalogd: comma-separated search `queries` that find the songs (one or two letters match the start of titles)")
	fs.IntVar(&opt.Songs, "songs", 1000, "catalogd: use at most `N` songs, in search order (the first is the most popular), e.g. 100")
	fs.StringVar(&opt.URLFile, "urls", "", "source: `file` of URLs, one a line; listen: master (or media) playlist URLs, e.g. from catalogd's hls_url;\nflat: any URL, optionally followed by a range: http://127.0.0.1:8082/t/TOKEN/artists/1/albums/2/songs/3/v1/aac_128.mp4 bytes=0-65535")
	playlists := fs.String("playlist", "", "source: comma-separated playlist `URLs`; listen plays them; flat requests them and every init section and segment they name\n(e.g. the hls_url of GET /songs/{id})")
	fs.DurationVar(&opt.Duration, "duration", 10*time.Second, "measured time, e.g. 30s or 5m")
	fs.DurationVar(&opt.Warmup, "warmup", 0, "load before measuring, not counted (fills caches), e.g. 5s")
	fs.DurationVar(&opt.Timeout, "timeout", 5*time.Second, "per-request timeout: a request still unanswered then counts as a timeout error, e.g. 2s")
	fs.IntVar(&opt.Conns, "conns", 64, "connections per host (keep-alive); flat: requests in flight at most; listen: at least one per listener, e.g. 128")
	fs.Float64Var(&opt.Rate, "rate", 0, "flat: requests per second, an open model measured from each request's scheduled time (0: closed loop, as fast as -conns allow);\nlisten: listener arrivals per second, a Poisson process (0: -listeners closed sessions)")
	fs.IntVar(&opt.Listeners, "listeners", 10, "listen: concurrent listeners, each playing song after song, e.g. 200")
	fs.IntVar(&opt.SessionSongs, "session-songs", 3, "listen with -rate: songs each arriving listener plays before leaving, e.g. 3")
	fs.IntVar(&opt.MaxSessions, "max-sessions", 10000, "listen with -rate: concurrent listeners at most (arrivals beyond are turned away), e.g. 5000")
	fs.Float64Var(&opt.Zipf, "zipf", 1.1, "popularity: Zipf exponent (> 1) over songs (listen) or URLs (flat); 0: uniform (flat: in turn)")
	fs.StringVar(&opt.Variant, "variant", "auto", "listen: auto (throughput-based ABR), lowest, highest, or a bitrate: 64, 128, 320")
	fs.Float64Var(&opt.Speed, "speed", 1, "listen: playback speed; 1 paces segments like real playback, 10 ten times faster, 0 fetches flat out (no buffer model)")
	fs.DurationVar(&opt.Buffer, "buffer", 30*time.Second, "listen: the player's buffer; the next segment is fetched when it fits, e.g. 10s for a tight player")
	fs.Uint64Var(&opt.Seed, "seed", 1, "random `seed` (song choice, URL order); the same seed repeats a run's choices")
	fs.StringVar(&opt.EdgeMetrics, "edge-metrics", "", "riff edge admin /metrics `URL`: origin fetches and bytes before and after, for origin offload\n(e.g. http://127.0.0.1:9082/metrics)")
	fs.StringVar(&opt.OriginMetrics, "origin-metrics", "", "riff origin /metrics `URL`: requests it served and bytes it sent (for an edge without riff metrics, e.g. nginx)")
	jsonPath := fs.String("json", "", "write the report as JSON to `file`, e.g. -json run.json")
	htmlPath := fs.String("html", "", "write the report as an HTML page with charts to `file`, e.g. -html run.html")
	fs.DurationVar(&opt.MaxP99, "max-p99", 0, "threshold: fail when p99 latency of all requests exceeds this, e.g. 50ms")
	fs.Var(optFloat{&opt.MaxErrorRate}, "max-error-rate", "threshold: fail when errors / requests exceeds this, e.g. 0 or 0.001 (or 0.1%)")
	fs.Var(optFloat{&opt.MinHitRatio}, "min-hit-ratio", "threshold: fail when the request hit ratio (X-Cache) is below this, e.g. 0.9")
	fs.Var(optFloat{&opt.MaxRebufferRatio}, "max-rebuffer-ratio", "threshold (listen): fail when stalled time / (stalled + played) exceeds this, e.g. 0.01")
	fs.BoolVar(&opt.Quiet, "quiet", false, "no progress line (e.g. in CI logs)")
	if err := config.Load(fs, args, getenv, "bench"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stderr, helpText)
		}
		return runConfig{}, err
	}
	opt.Queries = config.SplitList(*queries)
	opt.Playlists = config.SplitList(*playlists)
	if err := opt.validate(); err != nil {
		return runConfig{}, err
	}
	return runConfig{opt: opt, jsonPath: *jsonPath, htmlPath: *htmlPath}, nil
}

const helpText = `
Scenarios (the first argument; default listen):
  listen  virtual listeners: pick a song by Zipf popularity, fetch the master
          playlist, choose a variant (throughput ABR or -variant), fetch the init
          section and the segments' byte ranges paced like playback (-speed) with
          a simulated -buffer, and start another song at the end
  flat    a constant request rate (-rate, open model, latency from the scheduled
          send time) over a URL list or the segments of playlists

Examples:
  # smoke test against riff dev (make run), failing on any error or a slow p99
  riff bench listen -catalogd http://127.0.0.1:8080 -email demo@riff.dev \
      -password riff-demo-password -listeners 5 -speed 10 -duration 20s \
      -max-error-rate 0 -max-p99 200ms
  # edge capacity: 5000 requests/s over every segment of a playlist
  riff bench flat -playlist "$HLS_URL" -rate 5000 -conns 128 -warmup 5s \
      -duration 30s -edge-metrics http://127.0.0.1:9082/metrics -min-hit-ratio 0.9
  # listener QoE: 200 real-time listeners, report as HTML
  riff bench listen -urls masters.txt -listeners 200 -duration 5m \
      -max-rebuffer-ratio 0.01 -html qoe.html -json qoe.json

The report goes to stdout, one progress line a second to stderr. A missed
threshold makes the exit status non-zero. See docs/bench.md.
`
