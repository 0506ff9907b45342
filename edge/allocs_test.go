//go:build !race

// Allocation counts are meaningless under the race detector, so this file
// is left out of -race builds; `make test` runs it in a second step
// without -race.

package edge

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestHitPathAllocs checks that the public handler answers a range request
// from a warm cache without allocating, for every slice layout
// BenchmarkHitPath measures. AllocsPerRun counts the whole process, so a
// stray allocation elsewhere (a cache or origin goroutine) would show up
// too; warmHitPath waits for the cache to settle first.
func TestHitPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an edge and an origin")
	}
	for _, tc := range hitPathCases {
		t.Run(tc.name, func(t *testing.T) {
			handler, ctx := warmHitPath(t, tc.slice, tc.heap)
			if allocs := hitAllocs(t, handler, ctx); allocs != 0 {
				t.Errorf("%.2f allocations per hit, want 0", allocs)
			}
		})
	}
}

// hitAllocs returns the allocations per answer of handler to the warm
// request in ctx, after warming the pools, and checks the last answer.
func hitAllocs(tb testing.TB, handler fasthttp.RequestHandler, ctx *fasthttp.RequestCtx) float64 {
	tb.Helper()
	for range 10 { // warm the pools
		ctx.Response.Reset()
		handler(ctx)
	}
	allocs := testing.AllocsPerRun(200, func() {
		ctx.Response.Reset()
		handler(ctx)
	})
	checkHitPathBody(tb, ctx)
	ctx.Response.Reset()
	return allocs
}
