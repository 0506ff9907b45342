package bench

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"os"
	"strings"
)

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 720, 260
	padL, padR     = 64, 16
	padT, padB     = 28, 36
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"}

// series is one line of a chart.
type series struct {
	name string
	ys   []float64
}

// lineChart draws series over xs as an inline SVG with axes, a few ticks
// and a legend. labels, when given, name the x positions instead of
// numbers.
func lineChart(b *bytes.Buffer, id, title, xUnit, yUnit string, xs []float64, labels []string, ss []series) {
	fmt.Fprintf(b, `<figure><svg class="chart" id=%q xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label=%q>`+"\n",
		id, chartW, chartH, chartW, chartH, title)
	fmt.Fprintf(b, `<title>%s</title>`+"\n", html.EscapeString(title))
	xmin, xmax := 0.0, 1.0
	if len(xs) > 0 {
		xmin, xmax = xs[0], xs[len(xs)-1]
	}
	if xmax <= xmin {
		xmax = xmin + 1
	}
	ymax := 0.0
	for _, s := range ss {
		for _, y := range s.ys {
			if !math.IsNaN(y) && y > ymax {
				ymax = y
			}
		}
	}
	ymax = niceCeil(ymax)
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	px := func(x float64) float64 { return padL + (x-xmin)/(xmax-xmin)*pw }
	py := func(y float64) float64 { return padT + ph - y/ymax*ph }

	// Grid and y ticks.
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>`+"\n", padL, py(y), chartW-padR, py(y))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" font-size="11" fill="#555">%s</text>`+"\n", padL-6, py(y)+4, fmtTick(y))
	}
	// x ticks.
	if labels != nil {
		for i, l := range labels {
			fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11" fill="#555">%s</text>`+"\n", px(xs[i]), chartH-padB+16, html.EscapeString(l))
		}
	} else {
		for i := 0; i <= 5; i++ {
			x := xmin + (xmax-xmin)*float64(i)/5
			fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" font-size="11" fill="#555">%s</text>`+"\n", px(x), chartH-padB+16, fmtTick(x))
		}
	}
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", padL, chartH-padB, chartW-padR, chartH-padB)
	fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>`+"\n", padL, padT, padL, chartH-padB)
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="11" fill="#333">%s</text>`+"\n", 4, padT-10, html.EscapeString(yUnit))
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="end" font-size="11" fill="#333">%s</text>`+"\n", chartW-padR, chartH-4, html.EscapeString(xUnit))

	for i, s := range ss {
		color := palette[i%len(palette)]
		var pts strings.Builder
		for j, y := range s.ys {
			if j >= len(xs) || math.IsNaN(y) {
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", px(xs[j]), py(y))
		}
		fmt.Fprintf(b, `<polyline class="series" data-name=%q fill="none" stroke=%q stroke-width="2" points=%q/>`+"\n",
			s.name, color, strings.TrimSpace(pts.String()))
		if len(s.ys) == 1 { // a single point would not show as a line
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill=%q/>`+"\n", px(xs[0]), py(s.ys[0]), color)
		}
		lx := padL + 10 + i*110
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="12" height="3" fill=%q/><text x="%d" y="%d" font-size="11" fill="#333">%s</text>`+"\n",
			lx, padT-14, color, lx+16, padT-10, html.EscapeString(s.name))
	}
	fmt.Fprintf(b, "</svg><figcaption>%s</figcaption></figure>\n", html.EscapeString(title))
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func fmtTick(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
	default:
		return strings.TrimRight(fmt.Sprintf("%.3f", v), "0")
	}
}

// HTML renders the report as a self-contained page: the summary, tables,
// and inline SVG charts of latency and throughput over time and of the
// latency percentiles by request kind.
func (r *Report) HTML() []byte {
	var b bytes.Buffer
	esc := html.EscapeString
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n")
	fmt.Fprintf(&b, "<title>riff bench %s: %s</title>\n", esc(r.Scenario), esc(r.Target))
	b.WriteString(`<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 760px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 2px 10px; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5em 0; }
figcaption { color: #555; font-size: 12px; }
.fail { color: #b00; font-weight: bold; }
.warn { color: #a60; }
</style>
</head>
<body>
`)
	fmt.Fprintf(&b, "<h1>riff bench %s</h1>\n<p>%s, %s, %.1f s measured from %s</p>\n",
		esc(r.Scenario), esc(r.Target), esc(r.Settings), r.Seconds, r.StartedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "<table>\n<tr><th>throughput</th><td>%.0f req/s</td><td>%.1f MB/s</td></tr>\n", r.RPS, r.MBps)
	fmt.Fprintf(&b, "<tr><th>requests</th><td>%d</td><td>%.1f MB</td></tr>\n", r.Requests, float64(r.Bytes)/1e6)
	fmt.Fprintf(&b, "<tr><th>errors</th><td>%d</td><td>%s</td></tr>\n", r.Errors, ratio(r.ErrorRate))
	fmt.Fprintf(&b, "<tr><th>hit ratio</th><td>%s of requests</td><td>%s of bytes</td></tr>\n", ratio(r.HitRatio), ratio(r.ByteHitRatio))
	if o := r.Origin; o != nil {
		fmt.Fprintf(&b, "<tr><th>origin</th><td>%.0f fetches, %.1f MB</td><td>offload %s</td></tr>\n", o.Fetches, o.Bytes/1e6, ratio(o.Offload))
	}
	if q := r.Listen; q != nil {
		fmt.Fprintf(&b, "<tr><th>listeners</th><td>%d sessions, %d songs</td><td>first audio p50 %s, p99 %s</td></tr>\n",
			q.Sessions, q.Songs, msStr(q.Startup.P50), msStr(q.Startup.P99))
		fmt.Fprintf(&b, "<tr><th>playback</th><td>%d rebuffers (%s)</td><td>%.0f kbps avg, %d switches</td></tr>\n",
			q.Rebuffers, ratio(q.RebufferRatio), q.AvgKbps, q.Switches)
	}
	fmt.Fprintf(&b, "<tr><th>bench CPU</th><td>%.2f cores</td><td>GOMAXPROCS %d</td></tr>\n</table>\n", r.CPU.Cores, r.CPU.GOMAXPROCS)
	for _, w := range r.Warnings {
		fmt.Fprintf(&b, "<p class=\"warn\">Warning: %s</p>\n", esc(w))
	}
	if len(r.Thresholds) > 0 {
		b.WriteString("<table>\n<tr><th>threshold</th><th>limit</th><th>value</th><th></th></tr>\n")
		for _, c := range r.Thresholds {
			verdict, class := "ok", ""
			if !c.OK {
				verdict, class = "FAILED", ` class="fail"`
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td%s>%s</td></tr>\n",
				esc(c.Name), fmtLimit(c.Name, c.Limit), fmtLimit(c.Name, c.Value), class, verdict)
		}
		b.WriteString("</table>\n")
	}

	b.WriteString("<h2>Latency by kind</h2>\n<table>\n<tr><th>kind</th><th>cache</th><th>requests</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>\n")
	for _, k := range r.ByKind {
		rows := k.ByCache
		if len(rows) > 1 {
			rows = append(rows, CacheReport{Cache: "all", Requests: k.Requests, Latency: k.Latency})
		}
		for _, c := range rows {
			l := c.Latency
			fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
				esc(k.Kind), esc(c.Cache), c.Requests, msStr(l.P50), msStr(l.P90), msStr(l.P99), msStr(l.P999), msStr(l.Max))
		}
	}
	b.WriteString("</table>\n")

	xs := make([]float64, len(r.Series))
	p50, p99, mx, rps, mbs := make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs)), make([]float64, len(xs))
	for i, s := range r.Series {
		xs[i], p50[i], p99[i], mx[i], rps[i], mbs[i] = s.T, s.P50, s.P99, s.Max, s.RPS, s.MBps
	}
	b.WriteString("<h2>Over time</h2>\n")
	lineChart(&b, "latency-over-time", "Latency per second (p50, p99, max)", "seconds", "ms", xs, nil,
		[]series{{"p50", p50}, {"p99", p99}, {"max", mx}})
	lineChart(&b, "requests-over-time", "Requests per second", "seconds", "req/s", xs, nil, []series{{"req/s", rps}})
	lineChart(&b, "bytes-over-time", "Throughput (MB/s)", "seconds", "MB/s", xs, nil, []series{{"MB/s", mbs}})

	labels := []string{"p50", "p90", "p99", "p99.9", "max"}
	px := []float64{0, 1, 2, 3, 4}
	var perKind []series
	for _, k := range r.ByKind {
		l := k.Latency
		perKind = append(perKind, series{k.Kind, []float64{l.P50, l.P90, l.P99, l.P999, l.Max}})
	}
	b.WriteString("<h2>Latency percentiles</h2>\n")
	lineChart(&b, "latency-percentiles", "Latency percentiles by request kind", "percentile", "ms", px, labels, perKind)
	b.WriteString("</body>\n</html>\n")
	return b.Bytes()
}

// WriteHTML writes the HTML report to path.
func (r *Report) WriteHTML(path string) error {
	if err := os.WriteFile(path, r.HTML(), 0o644); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
