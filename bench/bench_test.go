package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestListenAgainstEdge runs listeners flat out against an origin and an
// edge and checks the report against what the edge says it served.
func TestListenAgainstEdge(t *testing.T) {
	st := startStack(t)
	o := opts("listen")
	o.Playlists = st.masters(t, 0)
	o.EdgeMetrics = st.metricsURL
	before := st.served(t)
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	after := st.served(t)
	if rep.Requests == 0 || rep.Errors != 0 {
		t.Fatalf("requests %d, errors %d %v, want requests and no errors", rep.Requests, rep.Errors, rep.ErrorsByKind)
	}
	if got, want := float64(rep.Bytes), after-before; got != want {
		t.Errorf("bench received %.0f bytes, the edge served %.0f", got, want)
	}
	for _, k := range []string{"playlist", "init", "segment"} {
		if rep.Kind(k).Requests == 0 {
			t.Errorf("no %s requests: %+v", k, rep.ByKind)
		}
	}
	if rep.HitRatio <= 0 || rep.HitRatio > 1 || rep.ByteHitRatio <= 0 {
		t.Errorf("hit ratio %v, byte hit ratio %v, want in (0, 1]", rep.HitRatio, rep.ByteHitRatio)
	}
	q := rep.Listen
	if q == nil || q.Songs == 0 || q.Sessions != 3 || q.Startup.Count != q.Songs || q.AvgKbps < 64 || q.AvgKbps > 320 {
		t.Errorf("listen QoE %+v", q)
	}
	if rep.Origin == nil || rep.Origin.Fetches <= 0 || rep.Origin.Offload <= 0 {
		t.Errorf("origin %+v, want fetches (cold cache) and some offload", rep.Origin)
	}
	if rep.RPS <= 0 || rep.MBps <= 0 || rep.Latency.P99 <= 0 || rep.Latency.Max < rep.Latency.P99 {
		t.Errorf("rates and latency: %+v %+v", rep.RPS, rep.Latency)
	}
	if len(rep.Series) < 1 {
		t.Errorf("no time series")
	}
}

// TestListenPacedAndPinned plays at 20x speed with a pinned variant, and
// with a token capped at 128 kbps: the edge filters the master playlist,
// so "highest" is 128.
func TestListenPacedAndPinned(t *testing.T) {
	st := startStack(t)
	for _, tc := range []struct {
		variant  string
		mbr      int
		wantKbps float64
	}{
		{"64", 0, 64},
		{"highest", 128, 128},
	} {
		t.Run(tc.variant, func(t *testing.T) {
			o := opts("listen")
			o.Playlists = st.masters(t, tc.mbr)
			o.Variant, o.Speed, o.Buffer = tc.variant, 20, 4*time.Second
			rep, err := Execute(context.Background(), o, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			q := rep.Listen
			if rep.Errors != 0 || q == nil || q.Songs == 0 {
				t.Fatalf("errors %v, QoE %+v", rep.ErrorsByKind, q)
			}
			if q.AvgKbps != tc.wantKbps || q.Switches != 0 {
				t.Errorf("avg %v kbps with %d switches, want %v and none", q.AvgKbps, q.Switches, tc.wantKbps)
			}
			// 13 s of media at 20x is 0.65 s a song: paced, 3 listeners
			// cannot fetch more than about 3 × 2 s / 0.65 s songs' worth.
			if max := 3 * (2.5 / (13.0 / 20)) * 13; q.PlayedSeconds > max {
				t.Errorf("fetched %.0f s of media in 2 s, more than paced playback allows (%.0f)", q.PlayedSeconds, max)
			}
			if q.Rebuffers != 0 {
				t.Logf("rebuffers on loopback: %d (%.3f)", q.Rebuffers, q.RebufferRatio)
			}
		})
	}
}

// TestFlatAgainstEdge sends a fixed rate over every segment of the
// playlists: after the warm-up everything is a hit and the origin idles.
func TestFlatAgainstEdge(t *testing.T) {
	st := startStack(t)
	o := opts("flat")
	o.Playlists = st.masters(t, 0)
	o.Rate, o.Warmup, o.Zipf = 300, time.Second, 0
	o.EdgeMetrics = st.metricsURL
	o.MinHitRatio, o.MaxErrorRate = 0.99, 0
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Requests == 0 {
		t.Fatalf("requests %d, errors %v", rep.Requests, rep.ErrorsByKind)
	}
	// The open model sends at the rate asked for, not faster (and not far
	// slower: a loaded machine under -race may lag, hence the loose floor).
	if want := 300 * rep.Seconds; float64(rep.Requests) < 0.5*want || float64(rep.Requests) > 1.1*want+5 {
		t.Errorf("%d requests in %.1fs at 300/s", rep.Requests, rep.Seconds)
	}
	if rep.HitRatio != 1 || rep.Origin == nil || rep.Origin.Fetches != 0 || rep.Origin.Offload != 1 {
		t.Errorf("after warm-up: hit ratio %v, origin %+v; want all hits, no origin fetches", rep.HitRatio, rep.Origin)
	}
	if f := rep.Failed(); len(f) != 0 {
		t.Errorf("thresholds failed: %+v", f)
	}
	if rep.Kind("segment").Requests == 0 || rep.Kind("init").Requests == 0 {
		t.Errorf("by kind: %+v", rep.ByKind)
	}
}

// misbehaving serves URLs that fail in each way bench must notice.
func misbehaving(t *testing.T) *httptest.Server {
	body := strings.Repeat("x", 1000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok": // honours the range
			w.Header().Set("X-Cache", "HIT")
			http.ServeContent(w, r, "ok.mp4", time.Time{}, strings.NewReader(body))
		case "/500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "/wrong-range": // answers another range than asked
			w.Header().Set("Content-Range", "bytes 10-19/1000")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, body[10:20])
		case "/ignores-range":
			io.WriteString(w, body)
		case "/short": // promises 100 bytes in Content-Range, sends 50
			w.Header().Set("Content-Range", "bytes 0-99/1000")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, body[:50])
		case "/hang":
			<-r.Context().Done()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func writeURLs(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "urls.txt")
	if err := os.WriteFile(p, []byte("# test URLs\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFlatCountsErrors checks every error kind against a server that
// fails on purpose, and that thresholds then fail the command.
func TestFlatCountsErrors(t *testing.T) {
	srv := misbehaving(t)
	file := writeURLs(t,
		srv.URL+"/ok bytes=0-99",
		srv.URL+"/500",
		srv.URL+"/wrong-range bytes=0-99",
		srv.URL+"/ignores-range bytes=0-99",
		srv.URL+"/short bytes=0-99",
		srv.URL+"/hang",
	)
	o := opts("flat")
	o.URLFile, o.Zipf, o.Rate, o.Conns = file, 0, 60, 16
	o.Timeout, o.Duration = 300*time.Millisecond, 1500*time.Millisecond
	o.MaxErrorRate = 0
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"http_500", ErrContentRange, ErrLength, ErrTimeout} {
		if rep.ErrorsByKind[kind] == 0 {
			t.Errorf("no %s errors counted: %v", kind, rep.ErrorsByKind)
		}
	}
	if rep.ErrorsByKind[ErrContentRange] < 2 { // wrong range and ignored range
		t.Errorf("content_range errors %d, want both wrong and ignored ranges", rep.ErrorsByKind[ErrContentRange])
	}
	if rep.Requests == 0 || rep.Kind("segment").Requests != rep.Requests {
		t.Errorf("good requests %d (segments %d), want only /ok's", rep.Requests, rep.Kind("segment").Requests)
	}
	if got := rep.Kind("segment").Bytes; got != 100*rep.Requests {
		t.Errorf("segment bytes %d for %d good ranges of 100", got, rep.Requests)
	}
	// A timed-out request counts with its full latency.
	if rep.Latency.Max < 300 {
		t.Errorf("max latency %vms, want at least the 300ms timeout", rep.Latency.Max)
	}
	if f := rep.Failed(); len(f) != 1 || f[0].Name != "max-error-rate" || rep.ErrorRate < 0.5 {
		t.Errorf("failed thresholds %+v, error rate %v", f, rep.ErrorRate)
	}
}

// TestFlatCoordinatedOmission loads a server that takes 100 ms per
// request, at twice what two connections can carry: latency counted from
// the scheduled send time grows with the backlog, far past 100 ms.
func TestFlatCoordinatedOmission(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		io.WriteString(w, "slow")
	}))
	t.Cleanup(srv.Close)
	file := writeURLs(t, srv.URL+"/slow")
	o := opts("flat")
	o.URLFile, o.Conns, o.Rate, o.Duration = file, 2, 40, 2*time.Second
	o.MaxP99 = 50 * time.Millisecond
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Requests < 20 {
		t.Fatalf("requests %d errors %v", rep.Requests, rep.ErrorsByKind)
	}
	// 2 conns × 10 req/s = 20/s served of 40/s scheduled: after 2 s the
	// queue is about 1 s deep.
	if rep.Latency.P99 < 500 || rep.Latency.P50 < 150 {
		t.Errorf("p50 %vms p99 %vms: the backlog is not in the latency (coordinated omission)", rep.Latency.P50, rep.Latency.P99)
	}
	if f := rep.Failed(); len(f) != 1 || f[0].Name != "max-p99" {
		t.Errorf("failed thresholds %+v, want max-p99", f)
	}
	// About 80 were scheduled and 40 sent: the rest are reported.
	if rep.Unsent < 20 || len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0], "fell behind") {
		t.Errorf("unsent %d, warnings %q", rep.Unsent, rep.Warnings)
	}
}

// TestRunCommand runs `riff bench` with flags: the report on stdout, JSON
// and HTML files, and a non-zero exit (ErrThresholds) on a missed
// threshold.
func TestRunCommand(t *testing.T) {
	srv := misbehaving(t)
	dir := t.TempDir()
	good := writeURLs(t, srv.URL+"/ok bytes=0-99", srv.URL+"/ok bytes=100-299")
	jsonPath, htmlPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	env := func(string) string { return "" }
	var out, errOut strings.Builder
	err := Run(context.Background(), []string{"flat", "-urls", good, "-duration", "1500ms", "-rate", "100",
		"-json", jsonPath, "-html", htmlPath, "-max-error-rate", "0", "-min-hit-ratio", "90%", "-max-p99", "1s"}, env, &out, &errOut)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"riff bench flat", "segment", "HIT", "throughput", "threshold    max-error-rate", "ok"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.Contains(errOut.String(), "req/s") || !strings.Contains(errOut.String(), "p99") {
		t.Errorf("no progress line on stderr: %q", errOut.String())
	}
	var rep Report
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Requests < 100 || rep.Kind("segment").Bytes != rep.Kind("segment").ByCache[0].Bytes || rep.HitRatio != 1 {
		t.Errorf("JSON report: %+v", rep)
	}
	if _, err := os.Stat(htmlPath); err != nil {
		t.Error(err)
	}

	bad := writeURLs(t, srv.URL+"/500")
	out.Reset()
	err = Run(context.Background(), []string{"flat", "-urls", bad, "-duration", "1s", "-rate", "20", "-quiet", "-max-error-rate", "0.1"}, env, &out, io.Discard)
	if !errors.Is(err, ErrThresholds) || !strings.Contains(out.String(), "FAILED") {
		t.Errorf("Run against a failing server = %v, want ErrThresholds\n%s", err, out.String())
	}

	for _, args := range [][]string{
		{"fly", "-urls", good},
		{"flat"},
		{"flat", "-urls", good, "-playlist", "http://x/y.m3u8"},
		{"listen", "-urls", good, "-zipf", "0.5"},
		{"listen", "-urls", good, "-variant", "best"},
		{"listen", "-catalogd", "http://127.0.0.1:1"},
	} {
		if err := Run(context.Background(), args, env, io.Discard, io.Discard); err == nil || errors.Is(err, ErrThresholds) {
			t.Errorf("Run(%q) = %v, want a usage error", args, err)
		}
	}
}

func TestHelpHasExamples(t *testing.T) {
	var errOut strings.Builder
	err := Run(context.Background(), []string{"--help"}, func(string) string { return "" }, io.Discard, &errOut)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help = %v", err)
	}
	for _, want := range []string{"-max-p99", "-min-hit-ratio", "-max-error-rate", "-zipf", "-variant", "-speed",
		"-rate", "-catalogd", "-urls", "-playlist", "-json", "-html", "Examples:", "riff bench listen -catalogd", "riff bench flat"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestRedactToken(t *testing.T) {
	for in, want := range map[string]string{
		"http://e/t/abc.def/artists/1/x.m3u8":          "http://e/t/…/artists/1/x.m3u8",
		"http://e/t/a/x,http://e/t/b/y":                "http://e/t/…/x,http://e/t/…/y",
		"http://127.0.0.1:8080":                        "http://127.0.0.1:8080",
		fmt.Sprintf("http://e/t/%s", "no-slash-after"): "http://e/t/no-slash-after",
	} {
		if got := redactToken(in); got != want {
			t.Errorf("redactToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestListenArrivals: listeners arrive as a Poisson process, play one
// song each and leave; the ABR starts low and climbs on loopback.
func TestListenArrivals(t *testing.T) {
	st := startStack(t)
	o := opts("listen")
	o.Playlists = st.masters(t, 0)
	o.Rate, o.SessionSongs, o.Speed = 10, 1, 0
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	q := rep.Listen
	if rep.Errors != 0 || q == nil {
		t.Fatalf("errors %v, QoE %+v", rep.ErrorsByKind, q)
	}
	// 10/s for 2 s: 20 expected; a Poisson count is below 6 or above 40
	// with negligible probability.
	if q.Sessions < 6 || q.Sessions > 40 || q.Songs > q.Sessions || q.Songs < q.Sessions-3 {
		t.Errorf("%d sessions, %d songs; want about 20 sessions of one song", q.Sessions, q.Songs)
	}
	if q.Switches == 0 || q.AvgKbps <= 64 {
		t.Errorf("ABR: %d switches, avg %.0f kbps; want it to climb from 64", q.Switches, q.AvgKbps)
	}
}

// slowHLS serves one song (a master playlist, a media playlist of five
// 2-second segments, byte ranges of one file) whose segments take delay
// each.
func slowHLS(t *testing.T, delay time.Duration) string {
	media := strings.Repeat("m", 5000)
	var pl strings.Builder
	pl.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-MAP:URI=\"aac_64.mp4\",BYTERANGE=\"100@0\"\n")
	for i := range 5 {
		fmt.Fprintf(&pl, "#EXTINF:2.0,\n#EXT-X-BYTERANGE:900@%d\naac_64.mp4\n", 100+i*900)
	}
	pl.WriteString("#EXT-X-ENDLIST\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/s/master.m3u8":
			io.WriteString(w, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=70000\naac_64.m3u8\n")
		case "/s/aac_64.m3u8":
			io.WriteString(w, pl.String())
		case "/s/aac_64.mp4":
			if r.Header.Get("Range") != "bytes=0-99" {
				time.Sleep(delay)
			}
			http.ServeContent(w, r, "aac_64.mp4", time.Time{}, strings.NewReader(media))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/s/master.m3u8"
}

// TestListenRebuffers: at 20x speed a 2 s segment plays in 100 ms but
// takes 250 ms to arrive, so playback stalls before every segment after
// the first; time to first audio includes the first segment's delay.
func TestListenRebuffers(t *testing.T) {
	o := opts("listen")
	o.Playlists = []string{slowHLS(t, 250*time.Millisecond)}
	o.Listeners, o.Speed, o.Duration = 2, 20, 2500*time.Millisecond
	o.MaxRebufferRatio = 0.01
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	q := rep.Listen
	if rep.Errors != 0 || q == nil || q.Songs < 2 {
		t.Fatalf("errors %v, QoE %+v", rep.ErrorsByKind, q)
	}
	// Each song: 4 stalls of about 150 ms.
	if q.Rebuffers < 3*q.Songs || q.RebufferRatio < 0.3 || q.StallSeconds < 0.4 {
		t.Errorf("rebuffers %d in %d songs, ratio %.2f, stalled %.2fs; want stalls before most segments",
			q.Rebuffers, q.Songs, q.RebufferRatio, q.StallSeconds)
	}
	if q.Startup.P50 < 250 {
		t.Errorf("time to first audio p50 %vms, want at least the segment's 250ms", q.Startup.P50)
	}
	if f := rep.Failed(); len(f) != 1 || f[0].Name != "max-rebuffer-ratio" {
		t.Errorf("failed thresholds %+v", f)
	}
}

// TestListenStalledServer: a server that never answers costs timeouts,
// counted with their latency, and no songs.
func TestListenStalledServer(t *testing.T) {
	srv := misbehaving(t)
	o := opts("listen")
	o.Playlists = []string{srv.URL + "/hang"}
	o.Timeout, o.Duration, o.MaxErrorRate = 200*time.Millisecond, time.Second, 0
	rep, err := Execute(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ErrorsByKind[ErrTimeout] < 3 || rep.Requests != 0 || rep.Latency.P50 < 200 {
		t.Errorf("errors %v, requests %d, p50 %vms", rep.ErrorsByKind, rep.Requests, rep.Latency.P50)
	}
	if rep.Listen == nil || rep.Listen.Songs != 0 || len(rep.Failed()) != 1 {
		t.Errorf("QoE %+v, failed %+v", rep.Listen, rep.Failed())
	}
}
