package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// metric is one row of the table: a value of a result, ok false when the
// load does not measure it.
type metric struct {
	name, format string
	value        func(r result) (float64, bool)
}

func benchOnly(f func(r result) float64) func(r result) (float64, bool) {
	return func(r result) (float64, bool) {
		if r.rep == nil {
			return 0, false
		}
		return f(r), true
	}
}

func always(f func(r result) float64) func(r result) (float64, bool) {
	return func(r result) (float64, bool) { return f(r), true }
}

// metrics are the rows of a load.
func metrics(results []result) []metric {
	ms := []metric{
		{"req/s", "%.0f", always(rate)},
		{"MB/s", "%.1f", func(r result) (float64, bool) {
			switch {
			case r.rep != nil:
				return r.rep.MBps, true
			case r.wrk != nil && r.wrk.Seconds > 0:
				return float64(r.wrk.Bytes) / r.wrk.Seconds / 1e6, true
			}
			return 0, false
		}},
		{"p50 ms", "%.2f", func(r result) (float64, bool) {
			switch {
			case r.rep != nil:
				return r.rep.Latency.P50, true
			case r.wrk != nil:
				return r.wrk.P50, true
			}
			return 0, false
		}},
		{"p99 ms", "%.2f", func(r result) (float64, bool) {
			switch {
			case r.rep != nil:
				return r.rep.Latency.P99, true
			case r.wrk != nil:
				return r.wrk.P99, true
			}
			return 0, false
		}},
	}
	for _, k := range []string{"playlist", "init", "segment"} {
		if len(results) > 0 && results[0].rep != nil && results[0].rep.Kind(k).Requests > 0 {
			ms = append(ms, metric{"p99 ms " + k, "%.2f", benchOnly(func(r result) float64 { return r.rep.Kind(k).Latency.P99 })})
		}
	}
	ms = append(ms,
		metric{"hit ratio", "%.3f", benchOnly(func(r result) float64 { return r.rep.HitRatio })},
		metric{"origin fetches", "%.0f", benchOnly(func(r result) float64 {
			if r.rep.Origin == nil {
				return 0
			}
			return r.rep.Origin.Fetches
		})},
		metric{"errors", "%.0f", always(errorsOf)},
		metric{"server CPU µs/req", "%.1f", always(result.serverUS)},
		metric{"server cores", "%.2f", always(result.serverCores)},
		metric{"generator CPU µs/req", "%.1f", always(result.genUS)},
		metric{"generator cores", "%.2f", always(func(r result) float64 { return r.genCores })},
	)
	return ms
}

// mean is the mean of m over server's results (ok false when none has it).
func mean(results []result, server string, m metric) (float64, bool) {
	var sum float64
	var n int
	for _, r := range results {
		if r.server != server {
			continue
		}
		if v, ok := m.value(r); ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0, false
	}
	return sum / float64(n), true
}

// report prints one markdown table: each load's metrics for riff and each
// nginx (means over rounds) and riff's ratio to each nginx; then which
// nginx configuration was faster, and the runs a generator limited.
func (c *compare) report(w io.Writer, loads []load, results [][]result, bound []string) {
	cpu := ""
	if out, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(out), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	fmt.Fprintf(w, "\nbench-compare: %d cores (%s); %s\n", c.s.cores, cpu, c.placement())
	cc := c.s.tcpCC
	if cc == "" {
		cc = "the machine's"
	}
	folio := "the machine's"
	if c.s.shmemFolio != "" {
		folio = c.s.shmemFolio + " on advice"
	}
	fmt.Fprintf(w, "%d songs of %s (AAC 64/128/320, 6 s fragments, 1 MiB slices), %s per load, %d rounds, %d conns, %d listeners, fixed rate %.0f req/s, TCP congestion control %s, shmem folios %s\n\n",
		c.s.songs, c.s.songLen, c.s.duration, c.s.rounds, c.s.conns, c.s.listeners, c.rate, cc, folio)
	var names []string
	for _, sv := range c.servers {
		names = append(names, sv.name)
	}
	if len(names) == 0 {
		return
	}
	others := names[1:]
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	head, rule := "| load | metric | "+strings.Join(names, " | ")+" |", "|---|---|"+strings.Repeat("--:|", len(names))
	for _, o := range others {
		head += " " + names[0] + "/" + o + " |"
		rule += "--:|"
	}
	fmt.Fprintln(tw, head)
	fmt.Fprintln(tw, rule)
	for li, l := range loads {
		for _, m := range metrics(results[li]) {
			line := "| " + l.name + " | " + m.name + " |"
			vals := make([]float64, len(names))
			oks := make([]bool, len(names))
			for i, n := range names {
				vals[i], oks[i] = mean(results[li], n, m)
				cell := "-"
				if oks[i] {
					cell = fmt.Sprintf(m.format, vals[i])
				}
				line += " " + cell + " |"
			}
			for i := 1; i < len(names); i++ {
				ratio := "-"
				if oks[0] && oks[i] && vals[i] != 0 {
					ratio = fmt.Sprintf("%.2f", vals[0]/vals[i])
				}
				line += " " + ratio + " |"
			}
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
	if len(others) > 1 {
		fmt.Fprintln(w, "\nnginx's faster configuration (closed loops: req/s; fixed rate: p99):")
		for li, l := range loads {
			fixed := strings.Contains(l.name, "fixed rate")
			m := metrics(results[li])[0] // req/s
			if fixed {
				m = metrics(results[li])[3] // p99 ms
			}
			best, bestV := "", 0.0
			var parts []string
			for _, n := range others {
				v, ok := mean(results[li], n, m)
				if !ok {
					continue
				}
				parts = append(parts, fmt.Sprintf("%s "+m.format+" %s", n, v, strings.TrimSuffix(m.name, " ms")))
				if best == "" || (!fixed && v > bestV) || (fixed && v < bestV) {
					best, bestV = n, v
				}
			}
			fmt.Fprintf(w, "- %s: %s (%s)\n", l.name, best, strings.Join(parts, ", "))
		}
	}
	if len(bound) > 0 {
		fmt.Fprintf(w, "\n!!! %d runs were GENERATOR-BOUND: their req/s and latency measure the generator, not the server:\n", len(bound))
		for _, b := range bound {
			fmt.Fprintln(w, "!!! "+b)
		}
	} else {
		fmt.Fprintf(w, "\nno run was generator-bound (every generator stayed under %.0f%% of its cores)\n", 100*generatorBound)
	}
}

// placement says where the servers and generators ran.
func (c *compare) placement() string {
	s := c.s
	var b strings.Builder
	if s.pin {
		b.WriteString("servers on core 0, generators on core 1 (bench GOMAXPROCS=1, wrk 1 thread)")
	} else {
		b.WriteString("no pinning")
	}
	if s.cpuCap > 0 {
		kind := "v1"
		if c.mounts.v2 != "" {
			kind = "v2"
		}
		fmt.Fprintf(&b, "; server under test capped at %.2f cores (cgroup %s, period %s); origin uncapped", s.cpuCap, kind, s.cpuPeriod)
	} else {
		b.WriteString("; no CPU cap")
	}
	procs := "Go's default"
	if s.edgeProcs > 0 {
		procs = fmt.Sprint(s.edgeProcs)
	}
	workers := "auto"
	if s.nginxWorkers > 0 {
		workers = fmt.Sprint(s.nginxWorkers)
	}
	fmt.Fprintf(&b, "; riff edge GOMAXPROCS %s, nginx worker_processes %s", procs, workers)
	return b.String()
}
