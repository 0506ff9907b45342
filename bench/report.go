package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of a run: what `riff bench` prints as a table and
// writes with -json. Ratios are -1 when nothing measured them; latencies
// are in milliseconds.
type Report struct {
	Scenario  string    `json:"scenario"`
	Target    string    `json:"target"`
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"seconds"` // measured time, warm-up excluded
	Settings  string    `json:"settings"`

	Requests     int64            `json:"requests"` // answered without error
	Bytes        int64            `json:"bytes"`    // body bytes received
	RPS          float64          `json:"rps"`
	MBps         float64          `json:"mb_per_s"` // 10^6 bytes per second
	Errors       int64            `json:"errors"`
	ErrorRate    float64          `json:"error_rate"` // errors / (requests + errors)
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	Unsent       int64            `json:"unsent"`         // flat with -rate: scheduled requests never sent (the server fell behind)
	HitRatio     float64          `json:"hit_ratio"`      // of responses with X-Cache
	ByteHitRatio float64          `json:"byte_hit_ratio"` // same, by bytes
	Latency      Latency          `json:"latency"`
	ByKind       []KindReport     `json:"by_kind"`

	Listen *QoE          `json:"listen,omitempty"`
	Origin *OriginReport `json:"origin,omitempty"`
	CPU    CPUReport     `json:"cpu"`

	Series     []Sample `json:"series"`
	Thresholds []Check  `json:"thresholds,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// Latency summarises a histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
}

// KindReport is the tally of one request kind.
type KindReport struct {
	Kind     string        `json:"kind"`
	Requests int64         `json:"requests"`
	Bytes    int64         `json:"bytes"`
	Latency  Latency       `json:"latency"`
	ByCache  []CacheReport `json:"by_cache"`
}

// CacheReport is the tally of one kind with one X-Cache status ("-": none).
type CacheReport struct {
	Cache    string  `json:"cache"`
	Requests int64   `json:"requests"`
	Bytes    int64   `json:"bytes"`
	Latency  Latency `json:"latency"`
}

// QoE is what listeners experienced (listen scenario).
type QoE struct {
	Sessions      int64   `json:"sessions"` // listeners that played, warm-up included
	Songs         int64   `json:"songs"`
	Startup       Latency `json:"startup"` // time to first audio: asking for a song until init and first segment arrived
	Rebuffers     int64   `json:"rebuffers"`
	StallSeconds  float64 `json:"stall_seconds"`  // wall clock
	PlayedSeconds float64 `json:"played_seconds"` // media fetched
	RebufferRatio float64 `json:"rebuffer_ratio"` // stalled / (stalled + playing), in wall-clock time
	AvgKbps       float64 `json:"avg_kbps"`       // media-time weighted
	Switches      int64   `json:"bitrate_switches"`
}

// OriginReport is the origin traffic during the measured time, from the
// edge's /metrics (-edge-metrics) or the origin's (-origin-metrics).
type OriginReport struct {
	Source  string  `json:"source"`
	Fetches float64 `json:"fetches"`
	Bytes   float64 `json:"bytes"`
	// Offload is 1 - origin bytes / bytes bench received (-1: unknown).
	Offload float64 `json:"offload"`
}

// CPUReport is bench's own CPU use over the measured time.
type CPUReport struct {
	UserSeconds   float64 `json:"user_seconds"`
	SystemSeconds float64 `json:"system_seconds"`
	Cores         float64 `json:"cores"` // CPU seconds per second
	GOMAXPROCS    int     `json:"gomaxprocs"`
	Saturated     bool    `json:"saturated"`
}

// Sample is one second of the run.
type Sample struct {
	T        float64 `json:"t"` // seconds since the start of measurement
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Bytes    int64   `json:"bytes"`
	RPS      float64 `json:"rps"`
	MBps     float64 `json:"mb_per_s"`
	P50      float64 `json:"p50"`
	P99      float64 `json:"p99"`
	Max      float64 `json:"max"`
	HitRatio float64 `json:"hit_ratio"`
}

// Check is one threshold and how the run did against it.
type Check struct {
	Name  string  `json:"name"`
	Limit float64 `json:"limit"`
	Value float64 `json:"value"`
	OK    bool    `json:"ok"`
}

// Failed lists the thresholds the run missed.
func (r *Report) Failed() []Check {
	var out []Check
	for _, c := range r.Thresholds {
		if !c.OK {
			out = append(out, c)
		}
	}
	return out
}

// Kind returns the tally of kind k, or a zero one.
func (r *Report) Kind(k string) KindReport {
	for _, kr := range r.ByKind {
		if kr.Kind == k {
			return kr
		}
	}
	return KindReport{Kind: k}
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// ratio formats a ratio as a percentage, or "-" when unknown.
func ratio(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", v*100)
}

// msStr formats milliseconds compactly.
func msStr(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.2fs", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0fms", v)
	default:
		return fmt.Sprintf("%.2fms", v)
	}
}

// WriteTable prints the report for people.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "\nriff bench %s → %s, %.1fs measured (%s)\n\n", r.Scenario, r.Target, r.Seconds, r.Settings)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "kind\tcache\trequests\tMB\tp50\tp90\tp99\tp99.9\tmax\t\n")
	row := func(kind, cache string, n, b int64, l Latency) {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", kind, cache, n, float64(b)/1e6,
			msStr(l.P50), msStr(l.P90), msStr(l.P99), msStr(l.P999), msStr(l.Max))
	}
	for _, k := range r.ByKind {
		if len(k.ByCache) == 1 {
			row(k.Kind, k.ByCache[0].Cache, k.Requests, k.Bytes, k.Latency)
			continue
		}
		for _, c := range k.ByCache {
			row(k.Kind, c.Cache, c.Requests, c.Bytes, c.Latency)
		}
		row(k.Kind, "all", k.Requests, k.Bytes, k.Latency)
	}
	row("total", "", r.Requests, r.Bytes, r.Latency)
	tw.Flush()

	fmt.Fprintf(w, "\nthroughput   %.0f req/s, %.1f MB/s\n", r.RPS, r.MBps)
	fmt.Fprintf(w, "errors       %d (%s)", r.Errors, ratio(r.ErrorRate))
	if len(r.ErrorsByKind) > 0 {
		keys := make([]string, 0, len(r.ErrorsByKind))
		for k := range r.ErrorsByKind {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%s %d", k, r.ErrorsByKind[k])
		}
		fmt.Fprintf(w, ": %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "cache        hit ratio %s of requests, %s of bytes\n", ratio(r.HitRatio), ratio(r.ByteHitRatio))
	if o := r.Origin; o != nil {
		fmt.Fprintf(w, "origin       %.0f fetches, %.1f MB (offload %s, from %s)\n", o.Fetches, o.Bytes/1e6, ratio(o.Offload), o.Source)
	}
	if q := r.Listen; q != nil {
		fmt.Fprintf(w, "listeners    %d sessions, %d songs; time to first audio p50 %s p99 %s\n",
			q.Sessions, q.Songs, msStr(q.Startup.P50), msStr(q.Startup.P99))
		fmt.Fprintf(w, "             %d rebuffers, rebuffer ratio %s, avg bitrate %.0f kbps, %d switches\n",
			q.Rebuffers, ratio(q.RebufferRatio), q.AvgKbps, q.Switches)
	}
	fmt.Fprintf(w, "bench CPU    %.2f cores (user %.1fs, system %.1fs, GOMAXPROCS %d)\n",
		r.CPU.Cores, r.CPU.UserSeconds, r.CPU.SystemSeconds, r.CPU.GOMAXPROCS)
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "WARNING      %s\n", warn)
	}
	if len(r.Thresholds) > 0 {
		fmt.Fprintln(w)
		for _, c := range r.Thresholds {
			verdict := "ok"
			if !c.OK {
				verdict = "FAILED"
			}
			fmt.Fprintf(w, "threshold    %-16s limit %-10s got %-10s %s\n", c.Name, fmtLimit(c.Name, c.Limit), fmtLimit(c.Name, c.Value), verdict)
		}
	}
}

func fmtLimit(name string, v float64) string {
	if strings.HasSuffix(name, "p99") {
		return msStr(v)
	}
	return fmt.Sprintf("%.4g", v)
}
