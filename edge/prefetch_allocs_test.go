//go:build !race

package edge

import (
	"testing"
	"time"
)

// TestPrefetchHitPathAllocs: with prefetch on, a warm hit whose range may
// reach past its last slice (the check that looks at the segment table)
// still allocates nothing once the table is known.
func TestPrefetchHitPathAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an edge and an origin")
	}
	handler, ctx := warmHitPathWith(t, 64<<10, false, func(c *Config) { c.Prefetch = 4 })
	for range 10 { // warm the pools; the first ones load the segment table
		ctx.Response.Reset()
		handler(ctx)
	}
	time.Sleep(500 * time.Millisecond) // the table's load, in the background, is over
	if allocs := hitAllocs(t, handler, ctx); allocs != 0 {
		t.Errorf("%.2f allocations per hit with prefetch on, want 0", allocs)
	}
}
