package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"riff/bench"
)

// target is one request of the flat load: a path on the server and a
// byte range (Last < 0: the whole object).
type target struct {
	path string
	rng  bench.Range
}

// flatTargets lists what riff bench's flat load requests over masters, in
// the order it requests them with -zipf 0: every playlist, init section
// and segment range the masters lead to, shuffled with the seed (bench's
// expand and prepare, which are not exported, do the same).
func flatTargets(masters []string, seed uint64) ([]target, error) {
	client := bench.NewClient(5*time.Second, 1)
	defer client.Close()
	conn := client.NewConn()
	get := func(u string) ([]byte, error) {
		res := conn.Get(u, bench.Range{First: 0, Last: -1}, "")
		if res.Err != "" {
			return nil, fmt.Errorf("GET %s: %s", u, res.Err)
		}
		return bytes.Clone(res.Body), nil
	}
	var out []target
	add := func(u string, r bench.Range) error {
		p, err := url.Parse(u)
		if err != nil {
			return err
		}
		out = append(out, target{path: p.RequestURI(), rng: r})
		return nil
	}
	whole := bench.Range{First: 0, Last: -1}
	for _, m := range masters {
		body, err := get(m)
		if err != nil {
			return nil, err
		}
		media := []string{m}
		if bench.IsMaster(body) {
			vs, err := bench.ParseMaster(body, m)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m, err)
			}
			if err := add(m, whole); err != nil {
				return nil, err
			}
			media = media[:0]
			for _, v := range vs {
				media = append(media, v.URL)
			}
		}
		for _, mu := range media {
			body, err := get(mu)
			if err != nil {
				return nil, err
			}
			pl, err := bench.ParseMedia(body, mu)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", mu, err)
			}
			if err := add(mu, whole); err != nil {
				return nil, err
			}
			if pl.Init != nil {
				if err := add(pl.Init.URL, pl.Init.Range); err != nil {
					return nil, err
				}
			}
			for _, s := range pl.Segments {
				if err := add(s.URL, s.Range); err != nil {
					return nil, err
				}
			}
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out, nil
}

// wrkScript is a wrk Lua script that sends targets in turn, each thread
// from the first, with a Range header where a target has a range. The
// requests are formatted once, in init, so that the script costs wrk
// little per request. done prints one line bench/compare parses.
func wrkScript(targets []target) []byte {
	var b bytes.Buffer
	b.WriteString("-- written by bench/compare: the flat load's requests, in its order\nlocal list = {\n")
	for _, t := range targets {
		r := "nil"
		if t.rng.Last >= 0 {
			r = strconv.Quote(fmt.Sprintf("bytes=%d-%d", t.rng.First, t.rng.Last))
		}
		fmt.Fprintf(&b, "  {%s, %s},\n", strconv.Quote(t.path), r)
	}
	b.WriteString(`}
local reqs = {}
local i = 0

init = function(args)
  for k, t in ipairs(list) do
    local h = {}
    if t[2] then h["Range"] = t[2] end
    reqs[k] = wrk.format("GET", t[1], h)
  end
end

request = function()
  i = i % #reqs + 1
  return reqs[i]
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("riff-compare-wrk requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d status_errors=%d socket_errors=%d\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
`)
	return b.Bytes()
}

// wrkReport is one wrk run.
type wrkReport struct {
	Requests, Bytes        int64
	Seconds                float64 // wrk's measured time
	P50, P99               float64 // ms
	StatusErrors, SockErrs int64
	CPU                    time.Duration // wrk's own user + system time
	Threads                int
}

// parseWrk reads the line the script's done prints.
func parseWrk(out []byte) (wrkReport, error) {
	var r wrkReport
	i := bytes.Index(out, []byte("riff-compare-wrk "))
	if i < 0 {
		return r, fmt.Errorf("wrk: no summary line in its output:\n%s", out)
	}
	line, _, _ := bytes.Cut(out[i:], []byte("\n"))
	vals := map[string]int64{}
	for _, f := range strings.Fields(string(line))[1:] {
		k, v, ok := strings.Cut(f, "=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil {
			return r, fmt.Errorf("wrk: bad summary field %q", f)
		}
		vals[k] = n
	}
	for _, k := range []string{"requests", "duration_us", "bytes", "p50_us", "p99_us", "status_errors", "socket_errors"} {
		if _, ok := vals[k]; !ok {
			return r, fmt.Errorf("wrk: summary lacks %s: %s", k, line)
		}
	}
	r.Requests, r.Bytes = vals["requests"], vals["bytes"]
	r.Seconds = float64(vals["duration_us"]) / 1e6
	r.P50, r.P99 = float64(vals["p50_us"])/1e3, float64(vals["p99_us"])/1e3
	r.StatusErrors, r.SockErrs = vals["status_errors"], vals["socket_errors"]
	return r, nil
}

// RPS is requests per second (answered or not).
func (r wrkReport) RPS() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Seconds
}

// runWrk runs wrk with script against base for d, with conns connections
// on threads threads, and returns its report with its CPU time.
func runWrk(ctx context.Context, wrk, script, base string, threads, conns int, d time.Duration) (wrkReport, error) {
	args := []string{"-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns), "-d", strconv.Itoa(int(d.Round(time.Second).Seconds())) + "s",
		"--timeout", "5s", "--latency", "-s", script, base}
	cmd := exec.CommandContext(ctx, wrk, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) || ctx.Err() != nil {
			return wrkReport{}, fmt.Errorf("%s %s: %w\n%s%s", wrk, strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return wrkReport{}, err
	}
	r, err := parseWrk(out)
	if err != nil {
		return r, err
	}
	r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	r.Threads = threads
	return r, nil
}

// writeWrkScript writes the script for targets to path.
func writeWrkScript(path string, targets []target) error {
	return os.WriteFile(path, wrkScript(targets), 0o644)
}
