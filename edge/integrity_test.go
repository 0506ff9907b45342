package edge

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"riff/edge/cache"
	"riff/internal/blob"
)

// distinctMedia is a blob folder of n media objects of size bytes each,
// every one of them random, so that a page of one can never pass for a page
// of another: song i is under distinctSong(i).
type distinctMedia struct {
	root string
	data [][]byte // by song
}

func distinctSong(i int) string { return fmt.Sprintf("artists/9/albums/%d/songs/%d/v1/", 10+i, 100+i) }

const distinctFile = "aac_320.mp4"

func (d *distinctMedia) key(i int) string { return distinctSong(i) + distinctFile }

func newDistinctMedia(t testing.TB, n, size int) *distinctMedia {
	t.Helper()
	d := &distinctMedia{root: t.TempDir()}
	store, err := blob.NewFS(d.root)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rng := rand.NewChaCha8([32]byte{byte(n), byte(size), byte(size >> 8), byte(size >> 16)})
	for i := range n {
		b := make([]byte, size)
		rng.Read(b)
		d.data = append(d.data, b)
		if _, err := store.Put(context.Background(), d.key(i), bytes.NewReader(b), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// badPages lists the 4 KiB pages of got that differ from want (which starts
// at the same offset), as "page@offset" for a failure message.
func badPages(got, want []byte, base int64) []string {
	var bad []string
	for off := 0; off < len(want); off += 4096 {
		end := min(off+4096, len(want))
		if end > len(got) || !bytes.Equal(got[off:end], want[off:end]) {
			bad = append(bad, fmt.Sprintf("%d", base+int64(off)))
		}
	}
	return bad
}

// pausedRequest sends a GET with a Range over a socket whose receive buffer
// is tiny, reads only the response head, and returns the connection and a
// reader positioned at the body: the server is left with almost the whole
// body to send.
func pausedRequest(t testing.TB, addr, target, rangeHdr string) (net.Conn, *bufio.Reader, map[string]string) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: edge\r\nRange: %s\r\n\r\n", target, rangeHdr)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReaderSize(conn, 512)
	status, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the status line: %v", err)
	}
	hdr := map[string]string{"status": strings.TrimSpace(status)}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the head: %v", err)
		}
		if line = strings.TrimRight(line, "\r\n"); line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ":")
		hdr[strings.ToLower(k)] = strings.TrimSpace(v)
	}
	return conn, br, hdr
}

// TestPausedHitKeepsItsBytesWhileTheCacheEvicts is the scenario of a
// cached response that carried other songs' bytes: a HIT is sent to a
// client that stops reading after the head, the cache then evicts that
// slice and reuses its memory for other songs, and the client reads on.
// Every byte must be the song's own.
func TestPausedHitKeepsItsBytesWhileTheCacheEvicts(t *testing.T) {
	const S = 1 << 20
	media := newDistinctMedia(t, 6, 2*S)
	for _, mode := range sliceModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, cfg: func(c *Config) {
				c.CacheBytes = 4 * (S + 4096)
				c.HeapSlices, c.SlabCopy = mode.heap, mode.copy
			}})
			tok := make([]string, len(media.data))
			for i := range tok {
				tok[i] = h.play(distinctSong(i), 0)
			}
			get := func(i int, rng string) reply {
				return h.do("GET", h.object(tok[i], media.key(i)), "Range", rng)
			}
			first := fmt.Sprintf("bytes=0-%d", S-1)
			for range 3 { // warm, and raise its frequency so ristretto keeps it
				if r := get(0, first); r.status != 206 || !bytes.Equal(r.body, media.data[0][:S]) {
					t.Fatalf("warming: %d, %d bytes", r.status, len(r.body))
				}
			}
			h.edge.cache.Wait()
			name := h.edge.cache.Name([]byte(media.key(0)))
			e, ok := h.edge.cache.Get(name, cache.KindSlice, 0)
			if !ok {
				t.Fatal("slice 0 of song 0 is not cached after warming")
			}
			slot, _, inSlab := e.Slot()
			if inSlab == mode.heap {
				t.Fatalf("slice in slab = %v with HeapSlices = %v", inSlab, mode.heap)
			}
			if inSlab {
				if l := h.edge.cache.Slab().Lending(); l.On == mode.copy {
					if !mode.copy {
						t.Skipf("this host's huge page settings keep the slab from lending: %s", l.Why)
					}
					t.Fatalf("slab lends = %v with SlabCopy = %v", l.On, mode.copy)
				}
			}

			addr := strings.TrimPrefix(h.url, "http://")
			conn, br, hdr := pausedRequest(t, addr, "/t/"+tok[0]+"/"+media.key(0), first)
			if hdr["x-cache"] != "HIT" || !strings.Contains(hdr["status"], "206") {
				t.Fatalf("paused request: %q X-Cache %q, want a 206 HIT", hdr["status"], hdr["x-cache"])
			}
			if inSlab {
				// Wait until the edge has handed the whole body to the
				// kernel and let go of the slot: only the cache's
				// reference is left, the bytes sit in the socket.
				deadline := time.Now().Add(10 * time.Second)
				for h.edge.cache.Slab().Refs(slot) > 1 {
					if time.Now().After(deadline) {
						t.Fatalf("the response still holds slot %d after 10s", slot)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}

			// Churn: the other songs, until song 0's slice is gone and its
			// slot has been filled again (or, on the heap, just gone).
			evicted := false
			for round := 0; round < 40 && !evicted; round++ {
				for i := 1; i < len(media.data); i++ {
					for _, rng := range []string{first, fmt.Sprintf("bytes=%d-%d", S, 2*S-1)} {
						if r := get(i, rng); r.status != 206 {
							t.Fatalf("churn: song %d %s: %d", i, rng, r.status)
						}
					}
				}
				h.edge.cache.Wait()
				_, stillCached := h.edge.cache.Get(name, cache.KindSlice, 0)
				evicted = !stillCached && (!inSlab || h.edge.cache.Slab().Refs(slot) > 0)
			}
			if !evicted {
				t.Fatal("the churn never evicted song 0's slice and reused its slot: the test proves nothing")
			}

			conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			got, err := io.ReadAll(io.LimitReader(br, S))
			if err != nil {
				t.Fatalf("reading the paused body: %v after %d bytes", err, len(got))
			}
			if bad := badPages(got, media.data[0][:S], 0); len(bad) > 0 {
				t.Fatalf("the paused HIT carried foreign bytes: %d of %d pages differ from the blob (offsets %s …)",
					len(bad), S/4096, strings.Join(bad[:min(len(bad), 8)], ","))
			}
		})
	}
}

// TestReadersUnderEvictionGetExactBytes is the soak: slow readers (tiny
// receive buffers, pauses) and fast readers ask for random ranges of
// distinct random objects while the cache, far smaller than the content,
// evicts all the time. Every body is compared byte for byte with the blob.
func TestReadersUnderEvictionGetExactBytes(t *testing.T) {
	const (
		S       = 64 << 10
		objects = 12
		size    = 640 << 10
	)
	media := newDistinctMedia(t, objects, size)
	for _, mode := range sliceModes {
		t.Run(mode.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, cfg: func(c *Config) {
				c.CacheBytes = 2 << 20
				c.HeapSlices, c.SlabCopy = mode.heap, mode.copy
			}})
			tok := make([]string, objects)
			for i := range tok {
				tok[i] = h.play(distinctSong(i), 0)
			}
			addr := strings.TrimPrefix(h.url, "http://")
			randRange := func(rng *rand.Rand) (int, int64, int64) {
				i := rng.IntN(objects)
				start := rng.Int64N(size)
				n := 1 + rng.Int64N(min(size-start, 5*S))
				return i, start, start + n - 1
			}
			var (
				mu       sync.Mutex
				failures []string
				bad      int
				slow     atomic.Int64
				fast     atomic.Int64
			)
			fail := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				bad++
				if len(failures) < 10 {
					failures = append(failures, fmt.Sprintf(format, args...))
				}
			}
			check := func(kind string, i int, lo, hi int64, status string, body []byte) {
				want := media.data[i][lo : hi+1]
				if !strings.Contains(status, "206") || !bytes.Equal(body, want) {
					fail("%s read of song %d bytes %d-%d: %s, %d bytes, %d pages differ",
						kind, i, lo, hi, status, len(body), len(badPages(body, want, lo)))
				}
			}
			// The loops are bounded by count (3 s here on a loaded machine);
			// the deadline only stops a run the race detector and a busy
			// machine slow down past reason, with enough reads for the
			// floors below.
			deadline := time.Now().Add(60 * time.Second)
			var wg sync.WaitGroup
			// Slow readers: read the head, pause, then trickle the body.
			for w := range 6 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for n := 0; n < 50 && time.Now().Before(deadline); n++ {
						i, lo, hi := randRange(rng)
						conn, br, hdr := pausedRequest(t, addr, "/t/"+tok[i]+"/"+media.key(i), fmt.Sprintf("bytes=%d-%d", lo, hi))
						time.Sleep(time.Duration(rng.IntN(40)) * time.Millisecond)
						body := make([]byte, 0, hi-lo+1)
						buf := make([]byte, 1+rng.IntN(8192))
						conn.SetReadDeadline(time.Now().Add(30 * time.Second))
						for int64(len(body)) < hi-lo+1 {
							k, err := br.Read(buf[:min(len(buf), int(hi-lo+1)-len(body))])
							body = append(body, buf[:k]...)
							if err != nil {
								break
							}
							if rng.IntN(8) == 0 {
								time.Sleep(time.Millisecond)
							}
						}
						conn.Close()
						check("slow", i, lo, hi, hdr["status"], body)
						slow.Add(1)
					}
				})
			}
			// Fast readers, which also keep the cache churning.
			for w := range 4 {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 2))
					for n := 0; n < 1500 && time.Now().Before(deadline); n++ {
						i, lo, hi := randRange(rng)
						r, err := doRequest(h.client, "GET", h.object(tok[i], media.key(i)), nil, "Range", fmt.Sprintf("bytes=%d-%d", lo, hi))
						if err != nil {
							fail("fast read: %v", err)
							return
						}
						check("fast", i, lo, hi, fmt.Sprint(r.status), r.body)
						fast.Add(1)
					}
				})
			}
			wg.Wait()
			st := h.edge.cache.Stats()
			t.Logf("%d slow and %d fast reads; cache: %d evicted, %d hits, %d direct responses",
				slow.Load(), fast.Load(), st.KeysEvicted, st.Hits, int(h.metric("riff_edge_direct_responses_total")))
			if len(failures) > 0 {
				t.Fatalf("%d bad bodies of %d reads, the first:\n%s", bad, slow.Load()+fast.Load(), strings.Join(failures, "\n"))
			}
			if slow.Load() < 30 || fast.Load() < 300 {
				t.Fatalf("only %d slow and %d fast reads in the time allowed", slow.Load(), fast.Load())
			}
			if st.KeysEvicted == 0 {
				t.Fatal("the cache never evicted: the test proves nothing")
			}
			if h.metric("riff_edge_direct_responses_total") <= 0 {
				t.Fatal("no warm response went straight to the socket: the test did not exercise the hit path")
			}
		})
	}
}

// TestPipelinedAnswersKeepTheirOrder: requests pipelined on one connection
// (a mix of warm slice answers, whose head the connection holds back for
// the body's writev, and answers fasthttp writes itself: a playlist, a
// 304, a 416, a 404) come back complete and in order.
func TestPipelinedAnswersKeepTheirOrder(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 1, 5*S)
	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S})
	tok := h.play(distinctSong(0), 0)
	target := "/t/" + tok + "/" + media.key(0)
	warm := h.do("GET", h.url+target, "Range", "bytes=0-327679")
	if warm.status != 206 {
		t.Fatalf("warming: %d", warm.status)
	}
	h.edge.cache.Wait()
	etag := warm.get("ETag")
	type want struct {
		status int
		body   []byte
	}
	var reqs strings.Builder
	var wants []want
	add := func(hdr string, w want) {
		fmt.Fprintf(&reqs, "GET %s HTTP/1.1\r\nHost: edge\r\n%s\r\n", target, hdr)
		wants = append(wants, w)
	}
	for i := range 3 {
		lo, hi := int64(i)*70000, int64(i)*70000+100000
		add(fmt.Sprintf("Range: bytes=%d-%d\r\n", lo, hi), want{206, media.data[0][lo : hi+1]})
		add("If-None-Match: "+etag+"\r\n", want{304, nil})
		add("Range: bytes=99999999-\r\n", want{416, nil})
	}
	fmt.Fprintf(&reqs, "GET /t/%s/%snothing.mp4 HTTP/1.1\r\nHost: edge\r\n\r\n", tok, distinctSong(0))
	wants = append(wants, want{404, nil})
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(reqs.String())); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	for i, w := range wants {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("answer %d body: %v", i, err)
		}
		if resp.StatusCode != w.status || (w.body != nil && !bytes.Equal(body, w.body)) {
			t.Fatalf("answer %d: %d with %d bytes, want %d with %d", i, resp.StatusCode, len(body), w.status, len(w.body))
		}
	}
}
