package catalogd

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/store"
)

// Benchmarks run on a seeded SQLite catalog of RIFF_BENCH_SONGS songs
// (default 20,000). The catalog is built once per size with the seed
// command in RIFF_BENCH_DIR (default the OS temp folder) and reused, so
// the 1,000,000-song run pays for seeding (a few minutes) only once:
//
//	RIFF_BENCH_SONGS=1000000 go test -run '^$' -bench . -benchtime 2000x ./catalogd
//
// On PostgreSQL, RIFF_BENCH_DB names the database instead: a schema of
// its own, seeded here when it holds no song (or beforehand with
// `riff catalogd seed -db URL -songs 1000000`), kept between runs and
// dropped by hand when done:
//
//	psql "$PG" -c 'CREATE SCHEMA riff_bench'
//	RIFF_BENCH_SONGS=1000000 RIFF_BENCH_DB="$PG&search_path=riff_bench,public" go test -run '^$' -bench . ./catalogd
//	psql "$PG" -c 'DROP SCHEMA riff_bench CASCADE'
//
// See docs/performance.md (catalogd section) for results.

func benchCatalog(b *testing.B) string {
	b.Helper()
	n := 20000
	if v := os.Getenv("RIFF_BENCH_SONGS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("RIFF_BENCH_SONGS=%q", v)
		}
	}
	if dsn := os.Getenv("RIFF_BENCH_DB"); dsn != "" {
		st, err := store.Open(context.Background(), dsn, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ids, err := st.SampleSongIDs(context.Background(), 1, 1)
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		if len(ids) == 0 {
			b.Logf("seeding %d songs into RIFF_BENCH_DB", n)
			if err := Run(context.Background(), []string{"seed", "-db", dsn, "-songs", strconv.Itoa(n)}, noEnv, os.Stderr, os.Stderr); err != nil {
				b.Fatal(err)
			}
		}
		return dsn
	}
	dir := os.Getenv("RIFF_BENCH_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("riff-bench-%d.db", n))
	dsn := "file:" + path
	done := path + ".done"
	if _, err := os.Stat(done); err == nil {
		return dsn
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
	b.Logf("seeding %d songs into %s (once)", n, path)
	start := time.Now()
	if err := Run(context.Background(), []string{"seed", "-db", dsn, "-songs", strconv.Itoa(n)}, noEnv, os.Stderr, os.Stderr); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded in %s", time.Since(start).Round(time.Second))
	if err := os.WriteFile(done, []byte(time.Since(start).String()+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return dsn
}

// benchEnv is a server on the bench catalog, with a logged-in free user
// and a sample of ready song ids.
type benchEnv struct {
	*env
	token string
	songs []int64
}

func newBenchEnv(b *testing.B, tweak ...func(*Config, *auth.Argon2Params)) *benchEnv {
	b.Helper()
	dsn := benchCatalog(b)
	e := newEnvDB(b, dsn, append([]func(*Config, *auth.Argon2Params){func(c *Config, _ *auth.Argon2Params) { c.LoginIPBurst = 1 << 20 }}, tweak...)...)
	// A listener account (created once; later runs log in).
	email, pw := "bench@example.com", "bench password"
	r := e.do(request{method: "POST", path: "/auth/login", body: map[string]string{"email": email, "password": pw}})
	if r.StatusCode != http.StatusOK {
		r = e.do(request{method: "POST", path: "/auth/register", body: map[string]string{"email": email, "password": pw, "display_name": "Bench"}})
	}
	var tr tokenResponse
	r.decode(b, &tr)
	be := &benchEnv{env: e, token: tr.AccessToken}
	// A catalog seeded by an older binary has fragmented full-text indexes:
	// merge them now rather than in the background during the run.
	if err := e.store.MergeSearchIndexes(context.Background(), 1); err != nil {
		b.Fatal(err)
	}
	// The benchmark clock does not move: the access token stays valid.
	ids, err := e.store.SampleSongIDs(context.Background(), 5000, 42)
	if err != nil || len(ids) == 0 {
		b.Fatalf("song ids: %v", err)
	}
	be.songs = ids
	return be
}

// benchQueries are typical searches against the seeded vocabulary: common
// and rare words, two words, prefixes as typed, one and two letters,
// folded diacritics and punctuation, and a miss.
var benchQueries = []string{
	"love", "midnight", "summer rain", "golden", "paradise", "electric dreams", "broken heart", "neon",
	"mid", "midni", "sum", "dj", "the", "l", "ca", "beyonce", "muller", "cafe del", "sigur", "rock n roll",
	"luftballons", "krakow", "hallelujah", "zzzzqx", "queen", "wild horse", "ghost", "cosmic love", "a", "d/c",
}

// BenchmarkSearch measures /search latency, one request at a time over
// HTTP, and reports p50 and p99. One pass over the queries warms the
// caches first (steady state; the cold numbers are in the docs).
func BenchmarkSearch(b *testing.B) {
	be := newBenchEnv(b)
	for _, typ := range []string{"song", "song,artist,album,playlist"} {
		b.Run("type="+typ, func(b *testing.B) {
			client := &http.Client{}
			for _, q := range benchQueries {
				be.get("/search?type="+url.QueryEscape(typ)+"&q="+url.QueryEscape(q), "")
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu := processCPU()
			for i := range b.N {
				q := benchQueries[i%len(benchQueries)]
				start := time.Now()
				res, err := client.Get(be.url + "/search?type=" + url.QueryEscape(typ) + "&q=" + url.QueryEscape(q))
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat = append(lat, time.Since(start))
				if res.StatusCode != 200 {
					b.Fatalf("search %q = %d", q, res.StatusCode)
				}
			}
			b.StopTimer()
			reportLatency(b, lat)
			reportCPU(b, cpu)
		})
	}
}

// BenchmarkSearchQueries reports the latency of each benchmark query
// (for the slow-query table in the docs), for songs only and for all four
// groups.
func BenchmarkSearchQueries(b *testing.B) {
	be := newBenchEnv(b)
	for _, typ := range []string{"song", "all"} {
		types := typ
		if typ == "all" {
			types = "song,artist,album,playlist"
		}
		for _, q := range benchQueries {
			b.Run(typ+"/"+q, func(b *testing.B) {
				path := "/search?type=" + url.QueryEscape(types) + "&q=" + url.QueryEscape(q)
				be.get(path, "") // warm
				lat := make([]time.Duration, 0, b.N)
				cpu := processCPU()
				for range b.N {
					start := time.Now()
					r := be.get(path, "")
					lat = append(lat, time.Since(start))
					if r.StatusCode != 200 {
						b.Fatal(r.StatusCode)
					}
				}
				reportLatency(b, lat)
				reportCPU(b, cpu)
			})
		}
	}
}

// processCPU returns the user and system CPU time of the process in ns:
// server and client, as both run here. Unlike latency it hardly moves
// when other programs load the machine.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// reportCPU reports the process CPU time per operation since start (a
// processCPU reading).
func reportCPU(b *testing.B, start int64) {
	b.ReportMetric(float64(processCPU()-start)/1e6/float64(b.N), "cpu-ms/op")
}

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkGetSong measures GET /songs/{id} throughput over HTTP with
// concurrent keep-alive clients: anonymous (metadata only), logged in
// (access token checked, playback token minted or reused, URLs built), and
// logged in with token reuse off (a signature per request).
func BenchmarkGetSong(b *testing.B) {
	reusing := newBenchEnv(b)
	signing := newBenchEnv(b, func(c *Config, _ *auth.Argon2Params) { c.PlaybackReuse = -1 })
	for _, mode := range []string{"anonymous", "logged-in", "logged-in-no-reuse"} {
		b.Run(mode, func(b *testing.B) {
			be, token := reusing, ""
			switch mode {
			case "logged-in":
				token = be.token
			case "logged-in-no-reuse":
				be = signing
				token = be.token
			}
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var mu sync.Mutex
			var bad int
			b.SetParallelism(8) // 16 clients on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					id := be.songs[r.IntN(len(be.songs))]
					req, _ := http.NewRequest("GET", be.url+"/songs/"+strconv.FormatInt(id, 10), nil)
					if token != "" {
						req.Header.Set("Authorization", "Bearer "+token)
					}
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != 200 {
						mu.Lock()
						bad++
						mu.Unlock()
					}
				}
			})
			el := time.Since(start)
			b.StopTimer()
			if bad > 0 {
				b.Errorf("%d non-200 answers", bad)
			}
			b.ReportMetric(float64(b.N)/el.Seconds(), "req/s")
		})
	}
}

// BenchmarkGetSongHandler is GET /songs/{id} (logged in) without the
// network: the server's own cost per request.
func BenchmarkGetSongHandler(b *testing.B) {
	be := newBenchEnv(b)
	h := be.srv.Handler()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 2))
		for pb.Next() {
			id := be.songs[r.IntN(len(be.songs))]
			req, _ := http.NewRequest("GET", "/songs/"+strconv.FormatInt(id, 10), nil)
			req.Header.Set("Authorization", "Bearer "+be.token)
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			if w.status != 200 {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// BenchmarkTrending measures the trending query without the answer cache,
// over all songs and per genre.
func BenchmarkTrending(b *testing.B) {
	be := newBenchEnv(b)
	genres := []string{"", "pop", "rock", "jazz", "afrobeat"}
	lat := make([]time.Duration, 0, b.N)
	for i := range b.N {
		start := time.Now()
		_, err := be.store.Trending(context.Background(), time.Now(), genres[i%len(genres)], 50)
		if err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}
