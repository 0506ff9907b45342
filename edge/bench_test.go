package edge

import (
	"io"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"
)

// BenchmarkHitPath measures the public handler (with the obs middleware)
// answering 256 KiB range requests from a warm cache: token verification
// (cached), path cleaning, cache lookups and headers. The body is handed to
// fasthttp without copying, so writing it is not part of the measure; see
// bench/edge for the whole server under load.
func BenchmarkHitPath(b *testing.B) {
	for _, bc := range []struct {
		name  string
		slice int64
		heap  bool
	}{
		{"one-slice", 1 << 20, false},        // inside one 1 MiB slab slot
		{"four-slices", 64 << 10, false},     // across 64 KiB slab slots
		{"one-slice-heap", 1 << 20, true},    // heap slice: SetBodyRaw
		{"four-slices-heap", 64 << 10, true}, // across 64 KiB heap slices
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := newHarness(b, harnessOptions{sliceBytes: bc.slice, cfg: func(c *Config) { c.HeapSlices = bc.heap }})
			key := songA + "aac_320.mp4"
			tok := h.play(songA, 0)
			const rng = "bytes=10000-272143" // 256 KiB
			if r := h.do("GET", h.object(tok, key), "Range", rng); r.status != 206 || len(r.body) != 256<<10 {
				b.Fatalf("warm-up: %d, %d bytes", r.status, len(r.body))
			}
			h.edge.cache.Wait()
			handler := h.edge.public.Handler
			var req fasthttp.Request
			req.SetRequestURI("/t/" + tok + "/" + key)
			req.Header.SetHost("edge")
			req.Header.Set("Range", rng)
			var ctx fasthttp.RequestCtx
			ctx.Init(&req, nil, nil)
			handler(&ctx)
			if ctx.Response.StatusCode() != 206 || string(ctx.Response.Header.Peek("X-Cache")) != "HIT" {
				b.Fatalf("first: %d %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("X-Cache"))
			}
			b.ReportAllocs()
			// CPU time of the process per request: less sensitive than
			// wall time to other work on a shared machine.
			cpu0 := processCPU()
			for b.Loop() {
				ctx.Response.Reset()
				handler(&ctx)
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			if ctx.Response.StatusCode() != 206 {
				b.Fatalf("status %d", ctx.Response.StatusCode())
			}
			if bs := ctx.Response.BodyStream(); bs != nil {
				if n, err := io.Copy(io.Discard, bs); n != 256<<10 || err != nil {
					b.Fatalf("body stream: %d bytes, %v", n, err)
				}
			} else if len(ctx.Response.Body()) != 256<<10 {
				b.Fatalf("body: %d bytes", len(ctx.Response.Body()))
			}
			ctx.Response.Reset()
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
