package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Series that tell how much an edge asked of its origin. An edge's own
// metrics (riff edge) say it directly; an origin's (riff origin) count
// what it served, which is what any edge in front of it fetched.
var (
	edgeFetchSeries   = []string{"riff_edge_origin_fetches_total"}
	edgeBytesSeries   = []string{"riff_edge_origin_bytes_total"}
	originFetchSeries = []string{`riff_http_requests_total{component="origin"`}
	originBytesSeries = []string{"riff_origin_sent_bytes_total"}
)

// metricsSnapshot is origin traffic counters at one moment; ok is false
// when there was nothing to read.
type metricsSnapshot struct {
	fetches, bytes float64
	ok             bool
}

// snapshot reads the -edge-metrics or -origin-metrics counters.
func (r *runner) snapshot(ctx context.Context) metricsSnapshot {
	switch {
	case r.opt.EdgeMetrics != "":
		return scrape(ctx, r.opt.EdgeMetrics, edgeFetchSeries, edgeBytesSeries)
	case r.opt.OriginMetrics != "":
		return scrape(ctx, r.opt.OriginMetrics, originFetchSeries, originBytesSeries)
	}
	return metricsSnapshot{}
}

// originReport fills rep.Origin from the snapshot before the measured time
// and a new one.
func (r *runner) originReport(ctx context.Context, rep *Report, before metricsSnapshot) {
	if r.opt.EdgeMetrics == "" && r.opt.OriginMetrics == "" {
		return
	}
	src := r.opt.EdgeMetrics
	if src == "" {
		src = r.opt.OriginMetrics
	}
	after := r.snapshot(ctx)
	if !before.ok || !after.ok {
		rep.Warnings = append(rep.Warnings, "could not read "+src+": no origin offload")
		return
	}
	o := &OriginReport{Source: src, Fetches: after.fetches - before.fetches, Bytes: after.bytes - before.bytes, Offload: -1}
	if rep.Bytes > 0 {
		o.Offload = 1 - o.Bytes/float64(rep.Bytes)
	}
	rep.Origin = o
}

// scrape sums, in Prometheus text from url, the series whose name (with
// its labels) starts with one of fetch or bytes.
func scrape(ctx context.Context, url string, fetch, bytes []string) metricsSnapshot {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return metricsSnapshot{}
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return metricsSnapshot{}
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return metricsSnapshot{}
	}
	s, err := parseMetrics(bufio.NewScanner(res.Body), fetch, bytes)
	if err != nil {
		return metricsSnapshot{}
	}
	return s
}

// parseMetrics reads Prometheus text exposition lines.
func parseMetrics(sc *bufio.Scanner, fetch, bytes []string) (metricsSnapshot, error) {
	var s metricsSnapshot
	// A prefix with labels matches series that start with it; a bare
	// name matches that metric with any labels.
	match := func(series string, prefixes []string) bool {
		name, _, _ := strings.Cut(series, "{")
		for _, p := range prefixes {
			if strings.Contains(p, "{") && strings.HasPrefix(series, p) || name == p {
				return true
			}
		}
		return false
	}
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch {
		case match(series, fetch):
			s.fetches += v
		case match(series, bytes):
			s.bytes += v
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("bench: metrics: %w", err)
	}
	s.ok = true
	return s, nil
}
