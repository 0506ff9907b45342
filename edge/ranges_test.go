package edge

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestRangesMatchOrigin asks the edge and the origin the same questions
// about the same objects and wants the same answers, byte for byte and
// header for header, with a cold cache and again warm.
func TestRangesMatchOrigin(t *testing.T) {
	for _, mode := range sliceModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{sliceBytes: 64 << 10, cfg: func(c *Config) { c.HeapSlices, c.SlabCopy = mode.heap, mode.copy }})
			testRangesMatchOrigin(t, h)
			// Warm answers go out head and body in one writev, from the
			// slab or the heap alike.
			if sent := h.metric("riff_edge_direct_responses_total"); sent <= 0 {
				t.Errorf("responses written straight to the socket = %v in %s mode", sent, mode.name)
			}
		})
	}
}

func testRangesMatchOrigin(t *testing.T, h *harness) {
	const S = 64 << 10 // the harness's slice size
	key := songA + "aac_320.mp4"
	fi, err := os.Stat(filepath.Join(testMedia(t), key))
	if err != nil {
		t.Fatal(err)
	}
	size := fi.Size()
	if size < 3*S {
		t.Fatalf("test object is %d bytes, want several slices", size)
	}
	lastSlice := (size - 1) / S * S
	etag := h.direct("HEAD", key).get("ETag")
	lastMod := h.direct("HEAD", key).get("Last-Modified")
	r := func(a, b int64) string { return fmt.Sprintf("bytes=%d-%d", a, b) }
	cases := []struct {
		name string
		hdr  []string
	}{
		{"no range", nil},
		{"bytes=0-", []string{"Range", "bytes=0-"}},
		{"first byte", []string{"Range", "bytes=0-0"}},
		{"suffix 500", []string{"Range", "bytes=-500"}},
		{"suffix longer than the object", []string{"Range", "bytes=-99999999"}},
		{"suffix zero", []string{"Range", "bytes=-0"}},
		{"inside one slice", []string{"Range", r(1000, 2000)}},
		{"exactly one slice", []string{"Range", r(S, 2*S-1)}},
		{"ending exactly on a slice boundary", []string{"Range", r(100, S-1)}},
		{"starting exactly on a slice boundary", []string{"Range", r(S, S+10)}},
		{"one byte over a boundary", []string{"Range", r(S-1, S)}},
		{"spanning several slices", []string{"Range", r(1000, 3*S+5)}},
		{"the last short slice", []string{"Range", fmt.Sprintf("bytes=%d-", lastSlice)}},
		{"last byte", []string{"Range", r(size-1, size-1)}},
		{"end past the object", []string{"Range", r(size-10, size+10000)}},
		{"start at the size", []string{"Range", fmt.Sprintf("bytes=%d-", size)}},
		{"start past the end", []string{"Range", "bytes=99999999-"}},
		{"huge numbers", []string{"Range", "bytes=0-99999999999999999999"}},
		{"huge start", []string{"Range", "bytes=99999999999999999999-"}},
		{"huge start and end", []string{"Range", "bytes=9223372036854775000-9223372036854775806"}},
		{"malformed", []string{"Range", "bytes=abc"}},
		{"wrong unit", []string{"Range", "items=0-5"}},
		{"reversed", []string{"Range", "bytes=5-1"}},
		{"multiple ranges", []string{"Range", "bytes=0-1,5-9"}},
		{"whitespace and case", []string{"Range", " Bytes = 10 - 20 "}},
		{"If-None-Match matches", []string{"If-None-Match", etag}},
		{"If-None-Match star", []string{"If-None-Match", "*"}},
		{"If-None-Match other", []string{"If-None-Match", `"nope"`, "Range", r(0, 9)}},
		{"If-Range matches", []string{"Range", r(10, 20), "If-Range", etag}},
		{"If-Range other etag", []string{"Range", r(10, 20), "If-Range", `"nope"`}},
		{"If-Range weak", []string{"Range", r(10, 20), "If-Range", "W/" + etag}},
		{"If-Range date", []string{"Range", r(10, 20), "If-Range", lastMod}},
		{"If-Modified-Since now", []string{"If-Modified-Since", lastMod}},
		{"If-Range with unsatisfiable range", []string{"Range", "bytes=99999999-", "If-Range", `"nope"`}},
	}
	compare := func(t *testing.T, method string, hdr []string, wantCache string) {
		t.Helper()
		want := h.direct(method, key, hdr...)
		got := h.do(method, h.object(h.play(songA, 0), key), hdr...)
		if got.status != want.status {
			t.Fatalf("%s: status %d, origin %d", method, got.status, want.status)
		}
		for _, name := range []string{"Content-Range", "Content-Length", "ETag", "Content-Type", "Last-Modified", "Accept-Ranges", "Cache-Control"} {
			if got.get(name) != want.get(name) {
				t.Errorf("%s: %s = %q, origin %q", method, name, got.get(name), want.get(name))
			}
		}
		if !bytes.Equal(got.body, want.body) {
			t.Errorf("%s: body differs: %d bytes, origin %d", method, len(got.body), len(want.body))
		}
		if c := got.get("X-Cache"); c != wantCache {
			t.Errorf("%s: X-Cache = %q, want %s", method, c, wantCache)
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			purgeAll(t, h)
			compare(t, "GET", tc.hdr, "MISS")
			compare(t, "GET", tc.hdr, "HIT")
			compare(t, "HEAD", tc.hdr, "HIT")
			purgeAll(t, h)
			compare(t, "HEAD", tc.hdr, "MISS")
		})
	}
}

// purgeAll empties the edge's cache by purge RPC.
func purgeAll(t testing.TB, h *harness) {
	t.Helper()
	r, err := doRequest(h.client, "POST", h.admin+"/purge", []byte(`{"prefixes":[""]}`), "Authorization", "Bearer "+h.purgeToken("artists/"))
	if err != nil || r.status != 200 {
		t.Fatalf("purge everything: %d %s %v", r.status, r.body, err)
	}
}

// TestMissFetchesExactlyTheMissingSlices checks the origin requests: one
// Range request per contiguous run of missing slices, aligned to slices.
func TestMissFetchesExactlyTheMissingSlices(t *testing.T) {
	const S = 64 << 10
	h := newHarness(t, harnessOptions{sliceBytes: S})
	key := songA + "aac_320.mp4"
	url := h.object(h.play(songA, 0), key)
	get := func(rng string) {
		t.Helper()
		if r := h.do("GET", url, "Range", rng); r.status != 206 {
			t.Fatalf("GET %s = %d", rng, r.status)
		}
	}
	// Cold, size unknown: slices 1..2 in one request.
	get(fmt.Sprintf("bytes=%d-%d", S+5, 2*S+5))
	// Warm 1..2, cold 0 and 3..4: two runs.
	get(fmt.Sprintf("bytes=%d-%d", 10, 4*S+10))
	// All warm: nothing.
	get(fmt.Sprintf("bytes=%d-%d", 0, 5*S-1))
	want := []string{
		"bytes=" + strconv.Itoa(S) + "-" + strconv.Itoa(3*S-1),
		"bytes=0-" + strconv.Itoa(S-1),
		"bytes=" + strconv.Itoa(3*S) + "-" + strconv.Itoa(5*S-1),
	}
	got := h.origins[0].sentRanges()
	if len(got) != len(want) {
		t.Fatalf("origin saw ranges %q, want %q", got, want)
	}
	// The two runs of the second request may go out in either order.
	if got[0] != want[0] || !(got[1] == want[1] && got[2] == want[2] || got[1] == want[2] && got[2] == want[1]) {
		t.Errorf("origin saw ranges %q, want %q", got, want)
	}
}

// TestEmptyObjectMatchesOrigin: a zero-byte object has no slices.
func TestEmptyObjectMatchesOrigin(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := songA + "empty.ogg"
	for _, hdr := range [][]string{nil, {"Range", "bytes=0-"}, {"Range", "bytes=-5"}, {"Range", "bytes=0-0"}} {
		for _, method := range []string{"GET", "HEAD", "GET"} {
			want := h.direct(method, key, hdr...)
			got := h.do(method, h.object(h.play(songA, 0), key), hdr...)
			if got.status != want.status || got.get("Content-Length") != want.get("Content-Length") ||
				got.get("Content-Range") != want.get("Content-Range") || !bytes.Equal(got.body, want.body) {
				t.Errorf("%s %v: edge %d %v, origin %d %v", method, hdr, got.status, got.header, want.status, want.header)
			}
		}
	}
}
