package edge

import (
	"io"
	"syscall"
	"testing"

	"riff/internal/testrun"

	"github.com/valyala/fasthttp"
)

// hitPathCases are the slice layouts the hit path is measured and checked
// with (BenchmarkHitPath, TestHitPathAllocs).
var hitPathCases = []struct {
	name  string
	slice int64
	heap  bool
}{
	{"one-slice", 1 << 20, false},        // inside one 1 MiB slab slot
	{"four-slices", 64 << 10, false},     // across 64 KiB slab slots
	{"one-slice-heap", 1 << 20, true},    // heap slice: SetBodyRaw
	{"four-slices-heap", 64 << 10, true}, // across 64 KiB heap slices
}

// hitPathBody is the length of the range warmHitPath asks for.
const hitPathBody = 256 << 10

// warmHitPath starts an edge with the given slice layout, warms its cache
// with a 256 KiB range request, and returns the public handler (with the
// obs middleware) and a RequestCtx holding the same request, answered once
// from the cache. Call ctx.Response.Reset before each further answer.
func warmHitPath(tb testing.TB, slice int64, heap bool) (fasthttp.RequestHandler, *fasthttp.RequestCtx) {
	return warmHitPathWith(tb, slice, heap, nil)
}

// warmHitPathWith is warmHitPath with the edge's Config changed by cfg.
func warmHitPathWith(tb testing.TB, slice int64, heap bool, cfg func(*Config)) (fasthttp.RequestHandler, *fasthttp.RequestCtx) {
	tb.Helper()
	return warmHitPathOpts(tb, harnessOptions{sliceBytes: slice, cfg: func(c *Config) {
		c.HeapSlices = heap
		if cfg != nil {
			cfg(c)
		}
	}})
}

// warmHitPathOpts is warmHitPath on a harness made with opts.
func warmHitPathOpts(tb testing.TB, opts harnessOptions) (fasthttp.RequestHandler, *fasthttp.RequestCtx) {
	tb.Helper()
	h := newHarness(tb, opts)
	key := songA + "aac_320.mp4"
	tok := h.play(songA, 0)
	const rng = "bytes=10000-272143" // 256 KiB
	if r := h.do("GET", h.object(tok, key), "Range", rng); r.status != 206 || len(r.body) != hitPathBody {
		tb.Fatalf("warm-up: %d, %d bytes", r.status, len(r.body))
	}
	h.edge.cache.Wait()
	handler := h.edge.public.Handler
	var req fasthttp.Request
	req.SetRequestURI("/t/" + tok + "/" + key)
	req.Header.SetHost("edge")
	req.Header.Set("Range", rng)
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, nil, nil)
	handler(ctx)
	if ctx.Response.StatusCode() != 206 || string(ctx.Response.Header.Peek("X-Cache")) != "HIT" {
		tb.Fatalf("first: %d %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("X-Cache"))
	}
	return handler, ctx
}

// checkHitPathBody checks the last answer in ctx: 206 with the 256 KiB
// body, as a body stream (slab slots) or a body (heap slices).
func checkHitPathBody(tb testing.TB, ctx *fasthttp.RequestCtx) {
	tb.Helper()
	if ctx.Response.StatusCode() != 206 {
		tb.Fatalf("status %d", ctx.Response.StatusCode())
	}
	if bs := ctx.Response.BodyStream(); bs != nil {
		if n, err := io.Copy(io.Discard, bs); n != hitPathBody || err != nil {
			tb.Fatalf("body stream: %d bytes, %v", n, err)
		}
	} else if len(ctx.Response.Body()) != hitPathBody {
		tb.Fatalf("body: %d bytes", len(ctx.Response.Body()))
	}
}

// benchHits runs b's loop over the warm hit answered by handler and
// reports the process's CPU time per request (less sensitive than wall
// time to other work on a shared machine), then checks the last answer.
func benchHits(b *testing.B, handler fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) {
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		ctx.Response.Reset()
		handler(ctx)
	}
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
	checkHitPathBody(b, ctx)
	ctx.Response.Reset()
}

// BenchmarkHitPath measures the public handler (with the obs middleware)
// answering 256 KiB range requests from a warm cache: token verification
// (cached), path cleaning, cache lookups and headers. The body is handed to
// fasthttp without copying, so writing it is not part of the measure. For
// the whole server under load see `riff bench` (package bench) and
// `make bench-compare` (bench/compare, riff edge beside nginx), and
// docs/performance.md for the numbers. TestHitPathAllocs checks that it
// does not allocate.
func BenchmarkHitPath(b *testing.B) {
	for _, bc := range hitPathCases {
		b.Run(bc.name, func(b *testing.B) {
			handler, ctx := warmHitPath(b, bc.slice, bc.heap)
			benchHits(b, handler, ctx)
		})
	}
}

// BenchmarkTracing is BenchmarkHitPath's one-slice case with tracing off,
// on at the default -trace-ratio (1 % of requests sampled) and on for every
// request (spans batched to an in-test OTLP collector), back to back:
//
//	go test ./edge -run XXX -bench Tracing -count 5
func BenchmarkTracing(b *testing.B) {
	for _, tc := range []struct {
		name  string
		ratio float64
	}{{"off", 0}, {"ratio-0.01", 0.01}, {"ratio-1", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := harnessOptions{sliceBytes: 1 << 20}
			if tc.ratio > 0 {
				opts.traces, opts.traceRatio = testrun.NewOTLPReceiver(b), tc.ratio
			}
			handler, ctx := warmHitPathOpts(b, opts)
			benchHits(b, handler, ctx)
		})
	}
}

// BenchmarkAccessLog is BenchmarkHitPath's one-slice case without and
// with the access log (to io.Discard: formatting, the pending buffer and the
// writer's batched writes, not the file system), back to back:
//
//	go test ./edge -run XXX -bench AccessLog -count 5
func BenchmarkAccessLog(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			var alog *AccessLog
			if on {
				var err error
				alog, err = NewAccessLog(func() (io.WriteCloser, error) { return nopCloser{io.Discard}, nil }, nil, 0, nil)
				if err != nil {
					b.Fatal(err)
				}
			}
			handler, ctx := warmHitPathWith(b, 1<<20, false, func(c *Config) { c.AccessLog = alog })
			benchHits(b, handler, ctx)
			if on {
				b.ReportMetric(float64(alog.Stats().Dropped)/float64(b.N), "dropped/op")
			}
		})
	}
}

// processCPU returns the user and system CPU time of the process, in ns.
func processCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
