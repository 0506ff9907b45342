package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"time"

	"riff/bench"
)

// load is one of the loads every server gets.
type load struct {
	name string
	run  func(ctx context.Context, sv *server) (result, error)
}

// result is one load on one server in one round.
type result struct {
	server    string
	rep       *bench.Report // the riff bench loads
	wrk       *wrkReport    // the wrk load
	requests  float64       // answered and failed
	wall      time.Duration // of the whole load, for the server's cores
	serverCPU time.Duration
	genCPU    time.Duration // the generator's: this process (bench) or wrk
	genCores  float64       // the generator's CPU seconds per second
	genAvail  int           // cores the generator can use
}

// serverUS is the server's CPU µs per request.
func (r result) serverUS() float64 { return perRequest(r.serverCPU, r.requests) }

// genUS is the generator's CPU µs per request.
func (r result) genUS() float64 { return perRequest(r.genCPU, r.requests) }

func (r result) serverCores() float64 {
	if r.wall <= 0 {
		return 0
	}
	return r.serverCPU.Seconds() / r.wall.Seconds()
}

func perRequest(d time.Duration, n float64) float64 {
	if n <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / n
}

// generatorBound is the share of its cores above which a generator is
// called the limit of the measurement: past it, its own queueing shows in
// the latencies and the server may have had capacity to spare.
const generatorBound = 0.7

// bound reports whether the generator used more than generatorBound of
// its cores.
func (r result) bound() bool {
	return r.genAvail > 0 && r.genCores > generatorBound*float64(r.genAvail)
}

func (c *compare) benchOptions(scenario string, masters []string) bench.Options {
	return bench.Options{
		Scenario: scenario, Playlists: masters, Duration: c.s.duration, Timeout: 5 * time.Second,
		Conns: c.s.conns, Seed: 1, Quiet: true, OriginMetrics: c.originMetrics,
		MaxErrorRate: -1, MinHitRatio: -1, MaxRebufferRatio: -1,
	}
}

// benchLoad is a riff bench load, run in this process.
func (c *compare) benchLoad(name string, opt func(masters []string) bench.Options) load {
	return load{name: name, run: func(ctx context.Context, sv *server) (result, error) {
		o := opt(sv.masters)
		cpu0, t0 := sv.cpu(), time.Now()
		rep, err := bench.Execute(ctx, o, io.Discard)
		if err != nil {
			return result{}, err
		}
		r := result{server: sv.name, rep: rep, requests: float64(rep.Requests + rep.Errors),
			wall: time.Since(t0), serverCPU: sv.cpu() - cpu0,
			genCPU:   time.Duration((rep.CPU.UserSeconds + rep.CPU.SystemSeconds) * float64(time.Second)),
			genCores: rep.CPU.Cores, genAvail: min(rep.CPU.GOMAXPROCS, c.genCores())}
		return r, nil
	}}
}

// genCores is the number of cores the generators may run on.
func (c *compare) genCores() int {
	if c.s.pin {
		return 1
	}
	return runtime.NumCPU()
}

func (c *compare) wrkLoad() load {
	threads := c.genCores()
	return load{name: "wrk, closed loop", run: func(ctx context.Context, sv *server) (result, error) {
		cpu0, t0 := sv.cpu(), time.Now()
		w, err := runWrk(ctx, c.s.wrk, sv.script, sv.base, threads, c.s.conns, c.s.duration)
		if err != nil {
			return result{}, err
		}
		wall := time.Since(t0)
		r := result{server: sv.name, wrk: &w, requests: float64(w.Requests), wall: wall,
			serverCPU: sv.cpu() - cpu0, genCPU: w.CPU, genAvail: threads}
		if wall > 0 {
			r.genCores = w.CPU.Seconds() / wall.Seconds()
		}
		return r, nil
	}}
}

func (c *compare) loads() []load {
	ls := []load{
		c.benchLoad("flat, closed loop", func(m []string) bench.Options { return c.benchOptions("flat", m) }),
		c.benchLoad("listen, flat out", func(m []string) bench.Options {
			o := c.benchOptions("listen", m)
			o.Listeners, o.Speed, o.Zipf = c.s.listeners, 0, 1.1
			return o
		}),
	}
	if c.s.rate >= 0 {
		ls = append(ls, c.benchLoad("flat, fixed rate", func(m []string) bench.Options {
			o := c.benchOptions("flat", m)
			o.Rate = c.rate
			return o
		}))
	}
	if c.s.useWrk {
		ls = append(ls, c.wrkLoad())
	}
	return ls
}

// measure warms the caches, runs every load on every server -rounds
// times (riff, then each nginx, load by load), and prints the report.
func (c *compare) measure(ctx context.Context, stdout io.Writer) error {
	c.logf("warming the caches")
	for _, sv := range c.servers {
		o := c.benchOptions("flat", sv.masters)
		o.Duration, o.Zipf, o.Conns = 3*time.Second, 0, 8
		rep, err := bench.Execute(ctx, o, io.Discard)
		if err != nil {
			return err
		}
		if rep.Errors > 0 {
			return fmt.Errorf("%s: errors while warming: %v", sv.name, rep.ErrorsByKind)
		}
		if c.s.useWrk {
			ts, err := flatTargets(sv.masters, o.Seed)
			if err != nil {
				return fmt.Errorf("%s: %w", sv.name, err)
			}
			sv.script, sv.targets = filepath.Join(c.s.work, "wrk-"+sv.name+".lua"), len(ts)
			if err := writeWrkScript(sv.script, ts); err != nil {
				return err
			}
		}
	}
	if c.s.rate > 0 {
		c.rate = c.s.rate
	}
	loads := c.loads()
	results := make([][]result, len(loads))
	var bound []string
	for round := 1; round <= c.s.rounds; round++ {
		for li, l := range loads {
			for _, sv := range c.servers {
				c.logf("round %d: %s on %s", round, l.name, sv.name)
				var throttled0 int64
				if sv.group != nil {
					throttled0 = sv.group.throttled()
				}
				r, err := l.run(ctx, sv)
				if aerr := c.alive(); aerr != nil {
					return aerr
				}
				if err != nil {
					return fmt.Errorf("%s on %s: %w", l.name, sv.name, err)
				}
				results[li] = append(results[li], r)
				msg := fmt.Sprintf("%.0f req/s", rate(r))
				if r.rep != nil {
					msg += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms", r.rep.Latency.P50, r.rep.Latency.P99)
				} else if r.wrk != nil {
					msg += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms", r.wrk.P50, r.wrk.P99)
				}
				msg += fmt.Sprintf("; server %.1f µs/req, %.2f cores", r.serverUS(), r.serverCores())
				if sv.group != nil {
					msg += fmt.Sprintf(" (throttled in %d periods)", sv.group.throttled()-throttled0)
				}
				c.logf("  %s; generator %.1f µs/req, %.2f of %d cores", msg, r.genUS(), r.genCores, r.genAvail)
				if r.bound() {
					w := fmt.Sprintf("GENERATOR-BOUND: round %d, %s on %s: the generator used %.2f of its %d cores (over %.0f%%): this is its limit, not the server's",
						round, l.name, sv.name, r.genCores, r.genAvail, 100*generatorBound)
					c.logf("!!! %s", w)
					bound = append(bound, w)
				}
				if errs := errorsOf(r); errs > 0 {
					c.logf("%s answered %.0f errors", sv.name, errs)
				}
				if r.rep != nil {
					for _, w := range r.rep.Warnings {
						c.logf("%s: %s", sv.name, w)
					}
				}
			}
			if round == 1 && li == 0 && c.rate == 0 { // the closed loop: the fixed rate follows from it
				low := 0.0
				for i, r := range results[0] {
					if i == 0 || rate(r) < low {
						low = rate(r)
					}
				}
				c.rate = max(1, 0.5*low)
			}
		}
	}
	c.report(stdout, loads, results, bound)
	return nil
}

// rate is a result's requests per second.
func rate(r result) float64 {
	switch {
	case r.rep != nil:
		return r.rep.RPS
	case r.wrk != nil:
		return r.wrk.RPS()
	}
	return 0
}

func errorsOf(r result) float64 {
	switch {
	case r.rep != nil:
		return float64(r.rep.Errors)
	case r.wrk != nil:
		return float64(r.wrk.StatusErrors + r.wrk.SockErrs)
	}
	return 0
}
