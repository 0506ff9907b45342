package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/testrun"
)

// TestBenchGetSong is a benchmark, not a test: it runs only with
// RIFF_BENCH_DB (a seeded PostgreSQL catalog in a schema of its own, see
// catalogd/bench_test.go). It measures GET /songs/{id} (logged in: token
// check, song and credits, a playback token, signed URLs) with wrk over
// random songs, through HAProxy in front of RIFF_BENCH_INSTANCES catalogd
// (default 2), and straight to one of them for comparison:
//
//	RIFF_BENCH_DB="$PG&search_path=riff_bench,public" go test -run BenchGetSong -v ./cluster
//
// RIFF_BENCH_DURATION (default 20s) and RIFF_BENCH_CONNS (default 32) set
// each wrk run; RIFF_BENCH_ROUNDS (default 3) how many runs of each, whose
// median is reported.
func TestBenchGetSong(t *testing.T) {
	dsn := os.Getenv("RIFF_BENCH_DB")
	if dsn == "" {
		t.Skip("a benchmark: set RIFF_BENCH_DB to a seeded PostgreSQL catalog (catalogd/bench_test.go)")
	}
	wrk := testrun.RequireTool(t, "wrk")
	env := func(name, def string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return def
	}
	instances, _ := strconv.Atoi(env("RIFF_BENCH_INSTANCES", "2"))
	rounds, _ := strconv.Atoi(env("RIFF_BENCH_ROUNDS", "3"))
	duration, conns := env("RIFF_BENCH_DURATION", "20s"), env("RIFF_BENCH_CONNS", "32")

	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids, err := st.SampleSongIDs(context.Background(), 5000, 42)
	st.Close()
	if err != nil || len(ids) == 0 {
		t.Fatalf("RIFF_BENCH_DB holds no songs (%v): seed it first", err)
	}
	c, err := startOn(t, dsn, instances, "-log-level", "warn", "-workers", "0")
	if err != nil {
		t.Fatal(err)
	}
	u := user(t, c.URL, fmt.Sprintf("bench-%d", time.Now().UnixNano()))

	// wrk's script: a random sampled song per request, logged in.
	var list strings.Builder
	for i, id := range ids {
		if i > 0 {
			list.WriteByte(',')
		}
		list.WriteString(strconv.FormatInt(id, 10))
	}
	script := filepath.Join(t.TempDir(), "songs.lua")
	os.WriteFile(script, []byte(fmt.Sprintf(`local ids = {%s}
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/songs/" .. ids[math.random(#ids)], {["Authorization"] = "Bearer %s"})
end
`, list.String(), u.token)), 0o600)

	reqs := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p99 := regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`)
	run := func(target string) []float64 {
		var rates []float64
		for range rounds {
			out, err := exec.Command(wrk, "-t2", "-c"+conns, "-d"+duration, "--latency", "-s", script, target).CombinedOutput()
			if err != nil {
				t.Fatalf("wrk: %v\n%s", err, out)
			}
			if strings.Contains(string(out), "Non-2xx") {
				t.Fatalf("wrk saw failed answers:\n%s", out)
			}
			m := reqs.FindStringSubmatch(string(out))
			if m == nil {
				t.Fatalf("no rate in wrk's output:\n%s", out)
			}
			r, _ := strconv.ParseFloat(m[1], 64)
			rates = append(rates, r)
			lat := ""
			if l := p99.FindStringSubmatch(string(out)); l != nil {
				lat = l[1]
			}
			t.Logf("%s: %.0f req/s, p99 %s", target, r, lat)
		}
		return rates
	}
	through := run(c.URL)
	direct := run("http://" + c.Addr(0))
	t.Logf("GET /songs/{id}, logged in, %s connections: %d catalogd behind HAProxy median %.0f req/s %v; one catalogd direct median %.0f req/s %v",
		conns, instances, median(through), through, median(direct), direct)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
