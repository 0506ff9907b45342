package edge

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"riff/edge/cache"
	"riff/edge/disk"
)

// TestPrefetchMakesTheSecondSegmentAHit: a cold session (init segment,
// first segment) through a fleet edge; the first segment's answer starts a
// prefetch of the second segment's slices (read from the sidx), so the
// second segment is a hit; without prefetch it is not. Bodies are checked
// against the origin's bytes.
func TestPrefetchMakesTheSecondSegmentAHit(t *testing.T) {
	const S = 16 << 10 // segments of aac_320 (2 s, about 80 KB) span several slices
	root := testMedia(t)
	key := songA + "aac_320.mp4"
	for _, on := range []bool{true, false} {
		t.Run(fmt.Sprintf("prefetch=%v", on), func(t *testing.T) {
			n := 0
			if on {
				n = 4
			}
			f := newFleet(t, fleetOptions{n: 3, root: root, sliceBytes: S, prefetch: n})
			h := f.edges[0]
			file := h.direct("GET", key).body
			initEnd, _, _, err := boxLayout(file)
			if err != nil {
				t.Fatal(err)
			}
			starts, _, err := segmentTable(file)
			if err != nil || len(starts) < 4 {
				t.Fatalf("segment table: %v, %v", starts, err)
			}
			tok := h.play(songA, 0)
			seg := func(i int) string { return fmt.Sprintf("bytes=%d-%d", starts[i], starts[i+1]-1) }
			for _, rng := range []string{fmt.Sprintf("bytes=0-%d", initEnd-1), seg(0)} {
				if _, err := f.get(0, tok, key, rng, file); err != nil {
					t.Fatal(err)
				}
			}
			name := h.edge.cache.Name([]byte(key))
			deadline := time.Now().Add(5 * time.Second)
			for on && time.Now().Before(deadline) && !h.edge.pf.cached(key, name, starts[1]/S, (starts[2]-1)/S) {
				time.Sleep(10 * time.Millisecond)
			}
			r, err := f.get(0, tok, key, seg(1), file)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.get("X-Cache"); (got == "HIT") != on {
				t.Errorf("second segment: X-Cache %s with prefetch %v", got, on)
			}
			if on && h.metric(`riff_edge_prefetches_total{result="started"}`) < 1 {
				t.Errorf("no prefetch counted")
			}
		})
	}
}

// TestSegmentTable: the sidx of a packaged rendition gives the segments;
// a file without one, or cut before it, gives none (and says how much
// more it needs).
func TestSegmentTable(t *testing.T) {
	file, err := os.ReadFile(filepath.Join(testMedia(t), songA+"aac_128.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	_, sidxStart, sidxEnd, err := boxLayout(file)
	if err != nil {
		t.Fatal(err)
	}
	starts, _, err := segmentTable(file)
	if err != nil || starts[0] < int64(sidxEnd) || starts[len(starts)-1] != int64(len(file)) {
		t.Fatalf("segmentTable = %v, %v; want segments from %d to the end (%d)", starts, err, sidxEnd, len(file))
	}
	if _, need, err := segmentTable(file[:sidxStart+20]); err == nil || need != int64(sidxEnd) {
		t.Errorf("cut inside the sidx: need %d, err %v; want need %d", need, err, sidxEnd)
	}
	if _, _, err := segmentTable([]byte("not an mp4 file at all, no boxes")); err == nil {
		t.Error("garbage gave a table")
	}
}

// FuzzSegmentTable: whatever the first bytes of an object are, reading
// its segment table neither panics nor returns offsets that go backwards.
func FuzzSegmentTable(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x08ftyp\x00\x00\x00\x20sidx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		starts, _, err := segmentTable(b)
		if err != nil {
			return
		}
		for i := 1; i < len(starts); i++ {
			if starts[i] < starts[i-1] {
				t.Fatalf("offsets go backwards: %v", starts)
			}
		}
	})
}

// TestPrefetchLeavesDiskSlicesOnDisk: a slice the disk tier holds counts
// as cached for prefetch — it goes out by sendfile when asked for; reading
// it into RAM ahead of time cost more than it saved — while a slice in
// neither tier does not.
func TestPrefetchLeavesDiskSlicesOnDisk(t *testing.T) {
	skipDiskTierUnderRace(t)
	const S = 16 << 10
	h := newHarness(t, harnessOptions{root: testMedia(t), sliceBytes: S, diskDir: t.TempDir(),
		cfg: func(c *Config) { c.Prefetch = 4 }})
	key := songA + "aac_320.mp4"
	name := h.edge.cache.Name([]byte(key))
	h.edge.disk.Put(key, name.Gen(), 3, disk.Meta{Size: 10 * S, ETag: `"x"`}, make([]byte, S))
	h.edge.disk.Flush()
	if h.edge.cache.Has(name, cache.KindSlice, 3) {
		t.Fatal("slice 3 is in RAM: the test needs it on disk only")
	}
	if !h.edge.pf.cached(key, name, 3, 3) {
		t.Error("a slice on disk counts as not cached: prefetch would read it into RAM")
	}
	if h.edge.pf.cached(key, name, 3, 4) {
		t.Error("slice 4 is in neither tier, yet counts as cached")
	}
}
