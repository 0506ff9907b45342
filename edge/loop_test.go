package edge

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawConn dials the edge's public listener.
func rawConn(t *testing.T, h *harness) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// readAnswer reads one response off br, body included.
func readAnswer(t *testing.T, br *bufio.Reader, method string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("reading an answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading a body: %v", err)
	}
	return resp, body
}

func (h *harness) handoffs(reason string) float64 {
	return h.metric(fmt.Sprintf(`riff_edge_loop_handoffs_total{reason=%q}`, reason))
}

// TestLoopAnswersLikeFasthttp sends the same requests to an edge served by
// the event loop and to one served by fasthttp's goroutine per connection,
// and compares the answers: status, every header but Date and
// X-Request-Id, and body.
func TestLoopAnswersLikeFasthttp(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 1, 3*S+1000)
	loop := newHarness(t, harnessOptions{root: media.root, sliceBytes: S})
	plain := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, cfg: func(c *Config) { c.GoroutinePerConn = true }})
	if plain.edge.loop.Load() != nil {
		t.Fatal("GoroutinePerConn still runs the loop")
	}
	type req struct{ method, target, hdr string }
	answers := func(h *harness) []string {
		tok := h.play(distinctSong(0), 0)
		target := "/t/" + tok + "/" + media.key(0)
		warm := h.do("GET", h.url+target) // fills the cache: what follows are hits
		if warm.status != 200 {
			t.Fatalf("warming: %d", warm.status)
		}
		h.edge.cache.Wait()
		reqs := []req{
			{"GET", target, "Range: bytes=0-99\r\n"},
			{"GET", target, "Range: bytes=70000-200000\r\n"},
			{"GET", target, ""},
			{"HEAD", target, ""},
			{"HEAD", target, "Range: bytes=5-9\r\n"},
			{"GET", target, "If-None-Match: " + warm.get("ETag") + "\r\n"},
			{"GET", target, "Range: bytes=99999999-\r\n"},
			{"OPTIONS", target, "Origin: http://player\r\nAccess-Control-Request-Method: GET\r\n"},
			{"DELETE", target, ""},
			{"GET", "/t/not-a-token/" + media.key(0), ""},
			{"GET", "/nothing", ""},
			{"GET", target, "Connection: close\r\n"},
		}
		var out []string
		for i, r := range reqs {
			c := rawConn(t, h)
			fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: edge\r\n%s\r\n", r.method, r.target, r.hdr)
			resp, body := readAnswer(t, bufio.NewReader(c), r.method)
			var lines []string
			for k, v := range resp.Header {
				if k == "Date" || k == "X-Request-Id" {
					continue
				}
				lines = append(lines, k+": "+strings.Join(v, ","))
			}
			slices.Sort(lines)
			out = append(out, fmt.Sprintf("%d: %s %q: %d close=%v\n%s\nbody %d bytes, sum %x", i, r.method, r.hdr,
				resp.StatusCode, resp.Close, strings.Join(lines, "\n"), len(body), sum(body)))
		}
		return out
	}
	got, want := answers(loop), answers(plain)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d:\nloop:\n%s\nfasthttp:\n%s", i, got[i], want[i])
		}
	}
	if n := loop.handoffs("fill") + loop.handoffs("write") + loop.handoffs("request"); n != 1 {
		t.Errorf("hand-offs %v, want 1 (the warming miss)", n)
	}
}

func sum(b []byte) uint64 {
	var s uint64
	for i, c := range b {
		s = s*31 + uint64(c) + uint64(i)
	}
	return s
}

// TestLoopKeepAliveAcrossHandOffs: on one connection, hits answered by the
// loop, a miss (handed off to fasthttp, which then keeps the connection),
// and more hits, in order and byte-exact; a request that arrives in pieces
// is answered once it is whole.
func TestLoopKeepAliveAcrossHandOffs(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 2, 4*S)
	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S})
	tok0, tok1 := h.play(distinctSong(0), 0), h.play(distinctSong(1), 0)
	checkRange(t, h, media, []string{tok0}, 0, "bytes=0-262143") // song 0 cached
	h.edge.cache.Wait()

	// The client's pooled connection, back in the loop after the miss.
	loopConns := func(want float64) {
		t.Helper()
		var n float64
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if n = h.metric("riff_edge_loop_connections"); n == want {
				return
			}
		}
		t.Errorf("loop connections %v, want %v", n, want)
	}
	loopConns(1)
	c := rawConn(t, h)
	br := bufio.NewReader(c)
	get := func(tok string, i int, lo, hi int64, pieces int) {
		t.Helper()
		msg := fmt.Sprintf("GET /t/%s/%s HTTP/1.1\r\nHost: edge\r\nRange: bytes=%d-%d\r\n\r\n", tok, media.key(i), lo, hi)
		for p := range pieces {
			c.Write([]byte(msg[p*len(msg)/pieces : (p+1)*len(msg)/pieces]))
			time.Sleep(20 * time.Millisecond)
		}
		resp, body := readAnswer(t, br, "GET")
		if resp.StatusCode != 206 || !bytes.Equal(body, media.data[i][lo:hi+1]) {
			t.Fatalf("song %d %d-%d: %d, %d bytes, %d pages differ", i, lo, hi, resp.StatusCode, len(body), len(badPages(body, media.data[i][lo:hi+1], lo)))
		}
	}
	get(tok0, 0, 0, 99, 1)
	get(tok0, 0, 1000, 150000, 3)
	loopConns(2)
	get(tok1, 1, 5, 70000, 1) // a miss: handed off, then back in the loop
	if n := h.handoffs("fill"); n != 2 {
		t.Errorf("fill hand-offs %v, want 2 (warming and the miss)", n)
	}
	get(tok0, 0, 0, 262143, 2)
	get(tok1, 1, 5, 70000, 1)
	if n := h.handoffs("fill"); n != 2 {
		t.Errorf("fill hand-offs %v after hits, want 2", n)
	}
	loopConns(2) // ours is back in the loop
}

// TestLoopSlowReaderHandsOffTheWrite: an answer the socket does not take
// at once is finished outside the loop, which goes on answering others.
func TestLoopSlowReaderHandsOffTheWrite(t *testing.T) {
	const S = 1 << 20 // 12 MiB answers: more than loopback's send buffer takes
	media := newDistinctMedia(t, 1, 12*S)
	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S})
	tok := h.play(distinctSong(0), 0)
	checkRange(t, h, media, []string{tok}, 0, "bytes=0-")
	h.edge.cache.Wait()
	conn, br, hdr := pausedRequest(t, strings.TrimPrefix(h.url, "http://"), "/t/"+tok+"/"+media.key(0), "bytes=0-")
	if hdr["status"] != "HTTP/1.1 206 Partial Content" {
		t.Fatalf("paused request: %q", hdr["status"])
	}
	// Others are answered while that answer waits for its reader.
	for range 20 {
		checkRange(t, h, media, []string{tok}, 0, "bytes=100-300000")
	}
	body := make([]byte, 12*S)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadFull(br, body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, media.data[0]) {
		t.Fatalf("%d pages differ", len(badPages(body, media.data[0], 0)))
	}
	if n := h.handoffs("write"); n != 1 {
		t.Errorf("write hand-offs %v, want 1", n)
	}
	// The connection is back in the loop and answers again.
	fmt.Fprintf(conn, "GET /t/%s/%s HTTP/1.1\r\nHost: edge\r\nRange: bytes=10-20\r\n\r\n", tok, media.key(0))
	if resp, b := readAnswer(t, br, "GET"); resp.StatusCode != 206 || !bytes.Equal(b, media.data[0][10:21]) {
		t.Fatalf("next request: %d %d bytes", resp.StatusCode, len(b))
	}
	if n := h.handoffs("write") + h.handoffs("request"); n != 1 {
		t.Errorf("hand-offs %v after the next request, want 1", n)
	}
}

// TestLoopLeavesOddRequestsToFasthttp: a request with a body and a
// malformed one are answered by fasthttp as before the loop.
func TestLoopLeavesOddRequestsToFasthttp(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.play(songA, 0)
	c := rawConn(t, h)
	br := bufio.NewReader(c)
	fmt.Fprintf(c, "GET /t/%s/%smaster.m3u8 HTTP/1.1\r\nHost: edge\r\nContent-Length: 5\r\n\r\nhello", tok, songA)
	if resp, body := readAnswer(t, br, "GET"); resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("#EXTM3U")) {
		t.Fatalf("GET with a body: %d %q", resp.StatusCode, body)
	}
	fmt.Fprintf(c, "GET /t/%s/%smaster.m3u8 HTTP/1.1\r\nHost: edge\r\n\r\n", tok, songA)
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("the next request: %d", resp.StatusCode)
	}
	c2 := rawConn(t, h)
	fmt.Fprintf(c2, "GET /x HTTP/1.1\r\nHost: edge\r\nBad Header\r\n\r\n")
	if resp, _ := readAnswer(t, bufio.NewReader(c2), "GET"); resp.StatusCode != 400 {
		t.Fatalf("malformed request: %d, want 400", resp.StatusCode)
	}
	if n := h.handoffs("request"); n != 2 {
		t.Errorf("request hand-offs %v, want 2", n)
	}
}

// TestLoopTimeoutsAndLimits: idle and half-sent connections are closed by
// the sweep; connections beyond MaxConns are refused; HTTP/1.0 keeps alive
// only when asked and Connection: close closes.
func TestLoopTimeoutsAndLimits(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: func(c *Config) {
		c.IdleTimeout, c.ReadTimeout, c.MaxConns = 300*time.Millisecond, 300*time.Millisecond, 3
	}})
	tok := h.play(songA, 0)
	target := "/t/" + tok + "/" + songA + "master.m3u8"
	closedWithin := func(c net.Conn, d time.Duration) bool {
		c.SetReadDeadline(time.Now().Add(d))
		n, err := c.Read(make([]byte, 1))
		if err != io.EOF {
			t.Logf("read %d: %v", n, err)
		}
		return err == io.EOF
	}
	idle := rawConn(t, h) // answered by the loop itself (no fill, no hand-off)
	fmt.Fprintf(idle, "OPTIONS %s HTTP/1.1\r\nHost: edge\r\n\r\n", target)
	if resp, _ := readAnswer(t, bufio.NewReader(idle), "OPTIONS"); resp.StatusCode != 204 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	half := rawConn(t, h)
	fmt.Fprintf(half, "GET %s HTTP/1.1\r\nHost: ed", target)
	time.Sleep(100 * time.Millisecond) // both accepted
	extra := rawConn(t, h)
	fmt.Fprintf(extra, "OPTIONS %s HTTP/1.1\r\nHost: edge\r\n\r\n", target)
	third, _ := readAnswer(t, bufio.NewReader(extra), "OPTIONS")
	fourth := rawConn(t, h)
	fmt.Fprintf(fourth, "OPTIONS %s HTTP/1.1\r\nHost: edge\r\n\r\n", target)
	if resp, _ := readAnswer(t, bufio.NewReader(fourth), "OPTIONS"); resp.StatusCode != 503 || third.StatusCode != 204 {
		t.Errorf("third connection %d, fourth %d; want 204 and 503 (MaxConns 3)", third.StatusCode, resp.StatusCode)
	}
	if !closedWithin(idle, 3*time.Second) {
		t.Error("an idle connection was not closed after its timeout")
	}
	if !closedWithin(half, 3*time.Second) {
		t.Error("a half-sent request's connection was not closed after its timeout")
	}

	old := rawConn(t, h)
	br := bufio.NewReader(old)
	fmt.Fprintf(old, "GET %s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", target)
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != 200 || resp.Header.Get("Connection") != "keep-alive" {
		t.Errorf("HTTP/1.0 keep-alive: %d, Connection %q", resp.StatusCode, resp.Header.Get("Connection"))
	}
	fmt.Fprintf(old, "GET %s HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n", target)
	if resp, _ := readAnswer(t, br, "GET"); resp.StatusCode != 200 || !resp.Close {
		t.Errorf("Connection: close: %d, close=%v", resp.StatusCode, resp.Close)
	}
	if !closedWithin(old, time.Second) {
		t.Error("Connection: close left the connection open")
	}
}

// TestLoopShutdown: Shutdown closes the loop's idle connections and lets a
// handed-off request finish; Serve returns.
func TestLoopShutdown(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.origins[0].delay.Store(int64(300 * time.Millisecond))
	tok := h.play(songA, 0)
	idle := rawConn(t, h)
	fmt.Fprintf(idle, "OPTIONS /t/%s/%smaster.m3u8 HTTP/1.1\r\nHost: edge\r\n\r\n", tok, songA)
	if resp, _ := readAnswer(t, bufio.NewReader(idle), "OPTIONS"); resp.StatusCode != 204 {
		t.Fatalf("OPTIONS: %d", resp.StatusCode)
	}
	slow := rawConn(t, h)
	fmt.Fprintf(slow, "GET /t/%s/%smaster.m3u8 HTTP/1.1\r\nHost: edge\r\n\r\n", tok, songA)
	time.Sleep(100 * time.Millisecond) // handed off, waiting for the origin
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.edge.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if resp, body := readAnswer(t, bufio.NewReader(slow), "GET"); resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("#EXTM3U")) || !resp.Close {
		t.Errorf("the request in flight: %d, close=%v", resp.StatusCode, resp.Close)
	}
	idle.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("idle connection after Shutdown: %v, want EOF", err)
	}
}
