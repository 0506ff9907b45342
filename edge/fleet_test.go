package edge

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"riff/edge/peer"
)

// A fleet is a region's edges on loopback: n edges with peer fill (each
// other's admin listeners as -peers) in front of one shared origin, with
// one signing key, so any edge takes any token.
type fleet struct {
	t      *testing.T
	edges  []*harness
	origin *testOrigin
	alive  []bool
}

type fleetOptions struct {
	n           int
	root        string
	sliceBytes  int64
	noPeers     bool // the same fleet with peer fill off
	prefetch    int
	peerTimeout time.Duration // default 1s
}

func newFleet(t *testing.T, opts fleetOptions) *fleet {
	t.Helper()
	f := &fleet{t: t, origin: startOrigin(t, opts.root)}
	if opts.peerTimeout == 0 {
		opts.peerTimeout = time.Second
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var lns []net.Listener
	var urls []string
	for range opts.n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		urls = append(urls, "http://"+ln.Addr().String())
	}
	for i := range opts.n {
		var peers *peer.Fleet
		if !opts.noPeers {
			peers, err = peer.New(peer.Config{
				URLs: urls, Self: urls[i], Secret: "fleet-secret", Timeout: opts.peerTimeout,
				NewBreaker: func() peer.Breaker { return NewBreaker(2, time.Minute, time.Now) },
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		h := newHarness(t, harnessOptions{root: opts.root, sliceBytes: opts.sliceBytes, shared: []*testOrigin{f.origin},
			priv: priv, adminLn: lns[i], cfg: func(c *Config) {
				c.Peers, c.Prefetch = peers, opts.prefetch
				// Bursts of hundreds of connections on a loaded machine
				// under -race: no 408 for a request read slowly.
				c.ReadTimeout = time.Minute
			}})
		f.edges = append(f.edges, h)
		f.alive = append(f.alive, true)
	}
	return f
}

// get asks edge e for rng of key and checks the body against want.
func (f *fleet) get(e int, tok, key, rng string, want []byte) (reply, error) {
	r, err := doRequest(f.edges[e].client, "GET", f.edges[e].object(tok, key), nil, "Range", rng)
	if err != nil {
		return r, err
	}
	var lo, hi int64
	fmt.Sscanf(rng, "bytes=%d-%d", &lo, &hi)
	hi = min(hi, int64(len(want))-1)
	if r.status != 206 || !bytes.Equal(r.body, want[lo:hi+1]) {
		return r, fmt.Errorf("edge %d %s %s: %d, %d bytes (X-Cache %s), want 206 and %d exact bytes", e, key, rng, r.status, len(r.body), r.get("X-Cache"), hi-lo+1)
	}
	return r, nil
}

// TestFleetColdBurstFetchesOnce: 500 concurrent requests for one cold
// slice, spread over three edges, make exactly one origin fetch: each
// edge coalesces its own, the two that do not own the slice ask the one
// that does, and the owner coalesces theirs with its own.
func TestFleetColdBurstFetchesOnce(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 1, 3*S+1000)
	// A peer timeout no loaded machine under -race reaches: a peer that
	// times out sends the asker to the next owner or the origin (a second
	// fetch, by design).
	f := newFleet(t, fleetOptions{n: 3, root: media.root, sliceBytes: S, peerTimeout: 10 * time.Second})
	tok := f.edges[0].play(distinctSong(0), 0)
	key := media.key(0)
	rng := fmt.Sprintf("bytes=%d-%d", S+100, S+5000)   // in slice 1
	f.origin.delay.Store(int64(50 * time.Millisecond)) // a burst, not a queue
	var wg sync.WaitGroup
	errs := make(chan error, 500)
	xcache := make(chan string, 500)
	for i := range 500 {
		wg.Go(func() {
			r, err := f.get(i%3, tok, key, rng, media.data[0])
			if err != nil {
				errs <- err
				return
			}
			xcache <- r.get("X-Cache")
		})
	}
	wg.Wait()
	close(errs)
	close(xcache)
	for err := range errs {
		t.Fatal(err)
	}
	if n := f.origin.requestsFor(key); n != 1 {
		t.Fatalf("%d origin fetches for one slice through three edges, want 1 (ranges %v)", n, f.origin.sentRanges())
	}
	seen := map[string]int{}
	for x := range xcache {
		seen[x]++
	}
	if seen["PEER"] == 0 {
		t.Errorf("X-Cache seen: %v, want some PEER (two edges do not own the slice)", seen)
	}
}

// TestFleetPurgedGenerationIsRefused: an owner whose generation of an
// object differs from the asking edge's (a purge reached one of them
// only) refuses, and the asker goes to the origin; nothing purged is
// served across the fleet.
func TestFleetPurgedGenerationIsRefused(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 1, 2*S)
	f := newFleet(t, fleetOptions{n: 2, root: media.root, sliceBytes: S})
	key := media.key(0)
	owner := f.edges[0].edge.peers.Owner(key, 0)
	other := 1 - owner
	tok := f.edges[0].play(distinctSong(0), 0)
	rng := fmt.Sprintf("bytes=0-%d", S-1)
	if _, err := f.get(owner, tok, key, rng, media.data[0]); err != nil { // warm at the owner
		t.Fatal(err)
	}
	if r := doPurge(t, f.edges[other], strings.TrimSuffix(distinctSong(0), "v1/")); r.status != 200 { // the purge reaches one edge only
		t.Fatalf("purge: %d %s", r.status, r.body)
	}
	before := f.origin.requestsFor(key)
	r, err := f.get(other, tok, key, rng, media.data[0])
	if err != nil {
		t.Fatal(err)
	}
	if x := r.get("X-Cache"); x != "MISS" {
		t.Errorf("X-Cache %s from the purged edge, want MISS (the owner's copy is of the old generation)", x)
	}
	if f.origin.requestsFor(key) != before+1 {
		t.Errorf("the purged edge did not go to the origin")
	}
	if got := f.edges[owner].metric(`riff_edge_peer_requests_total{result="generation"}`); got != 1 {
		t.Errorf("owner's generation refusals = %v, want 1", got)
	}
	// And a peer request without the secret is refused.
	pr := f.edges[0].do("GET", f.edges[owner].admin+peer.Path(key, 0), "Range", rng)
	if pr.status != 403 {
		t.Errorf("peer request without the secret: %d, want 403", pr.status)
	}
}

// TestFleetSurvivesAnEdgeKilledUnderLoad: listeners play through three
// edges; one is killed mid-load. Requests keep being answered byte for
// byte by the others (the test routes around the dead edge as the load
// balancer would; only requests in flight at the dead edge may fail), and
// the dead edge's slices come from their next owner: a cold slice it owned
// is fetched from the origin once through both survivors.
func TestFleetSurvivesAnEdgeKilledUnderLoad(t *testing.T) {
	const S = 32 << 10
	const songs = 6
	const cold = 4 // songs nobody asked for, one of whose slices the dead edge owns
	media := newDistinctMedia(t, songs+cold, 8*S+500)
	f := newFleet(t, fleetOptions{n: 3, root: media.root, sliceBytes: S})
	toks := make([]string, songs+cold)
	for i := range toks {
		toks[i] = f.edges[0].play(distinctSong(i), 0)
	}
	const dead = 2
	var (
		mu       sync.Mutex
		killed   bool
		inFlight int // errors at the dead edge
		failures []error
	)
	var wg sync.WaitGroup
	for l := range 12 {
		wg.Go(func() {
			song := l % songs
			for step := range 40 {
				lo := int64(step%8)*S + int64(l*97%S)
				rng := fmt.Sprintf("bytes=%d-%d", lo, lo+S/3)
				mu.Lock()
				e := (l + step) % 3
				if killed && e == dead {
					e = (e + 1) % 3 // the load balancer has noticed
				}
				mu.Unlock()
				if _, err := f.get(e, toks[song], media.key(song), rng, media.data[song]); err != nil {
					mu.Lock()
					if e == dead {
						inFlight++
					} else {
						failures = append(failures, err)
					}
					mu.Unlock()
				}
				if l == 0 && step == 15 {
					mu.Lock()
					killed = true // from now on only requests in flight reach it
					mu.Unlock()
					f.edges[dead].stop()
				}
			}
		})
	}
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}
	t.Logf("errors at the killed edge (in flight): %d", inFlight)

	// A cold slice the dead edge owned: through the survivor that ranks
	// second it comes from the origin, through the other from that one.
	// The owners depend on the edges' (random) addresses: among the cold
	// songs' 36 slices the dead edge owns one but for (2/3)^36.
	c, idx := -1, int64(-1)
	var rank []int
	for song := songs; song < songs+cold && idx < 0; song++ {
		for i := int64(0); i <= 8; i++ {
			if r := f.edges[0].edge.peers.Rank(media.key(song), i, nil); r[0] == dead {
				c, idx, rank = song, i, r
				break
			}
		}
	}
	if idx < 0 {
		t.Fatal("no slice of the cold songs is owned by the dead edge")
	}
	key := media.key(c)
	rng := fmt.Sprintf("bytes=%d-%d", idx*S, idx*S+99)
	// The third in the ranking finds the owner dead and asks the second,
	// which fetches it from the origin; the second then has it.
	if _, err := f.get(rank[2], toks[c], key, rng, media.data[c]); err != nil {
		t.Fatal(err)
	}
	if _, err := f.get(rank[1], toks[c], key, rng, media.data[c]); err != nil {
		t.Fatal(err)
	}
	if n := f.origin.requestsFor(key); n != 1 {
		t.Errorf("the dead edge's cold slice: %d origin fetches through both survivors, want 1", n)
	}
	if got := f.edges[rank[2]].metric("riff_edge_peer_failovers_total"); got < 1 {
		t.Errorf("failovers counted at edge %d: %v", rank[2], got)
	}
}

// TestFleetOffload counts origin fetches per unique slice for the same
// requests through three edges with and without peer fill.
func TestFleetOffload(t *testing.T) {
	const S = 32 << 10
	const songs = 4
	media := newDistinctMedia(t, songs, 6*S)
	for _, noPeers := range []bool{true, false} {
		f := newFleet(t, fleetOptions{n: 3, root: media.root, sliceBytes: S, noPeers: noPeers})
		for e := range 3 {
			for i := range songs {
				tok := f.edges[0].play(distinctSong(i), 0)
				for idx := range int64(6) {
					if _, err := f.get(e, tok, media.key(i), fmt.Sprintf("bytes=%d-%d", idx*S, idx*S+S-1), media.data[i]); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		fetches := f.origin.requests()
		t.Logf("peer fill %v: %d origin fetches for %d unique slices (%.2f)", !noPeers, fetches, songs*6, float64(fetches)/float64(songs*6))
		if !noPeers && fetches != songs*6 {
			t.Errorf("with peer fill: %d origin fetches, want one per slice (%d)", fetches, songs*6)
		}
		for _, h := range f.edges {
			h.stop()
		}
	}
}

// nginxFleetConf returns configs/nginx-fleet.conf with its listen address
// and its three edge addresses replaced, and nginx's path, or skips the
// test without nginx.
func nginxFleetConf(t *testing.T, listen string, edges []string) (conf []byte, nginx string) {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
	}
	if _, err := os.Stat(nginx); err != nil {
		t.Skip("nginx is not installed")
	}
	conf, err = os.ReadFile("../configs/nginx-fleet.conf")
	if err != nil {
		t.Fatal(err)
	}
	for i, from := range []string{"127.0.0.1:8090", "127.0.0.1:8082", "127.0.0.1:8182", "127.0.0.1:8282", "worker_processes auto;"} {
		to := append([]string{listen}, edges...)
		to = append(to, "worker_processes 1;")
		if !bytes.Contains(conf, []byte(from)) {
			t.Fatalf("configs/nginx-fleet.conf has no %q", from)
		}
		conf = bytes.ReplaceAll(conf, []byte(from), []byte(to[i]))
	}
	return conf, nginx
}

// nginxPrefix writes conf into a scratch nginx prefix and returns the
// arguments that run it.
func nginxPrefix(t *testing.T, conf []byte) []string {
	t.Helper()
	prefix := t.TempDir()
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	global := "daemon off;"
	if os.Geteuid() == 0 {
		global += " user root;"
	}
	return []string{"-p", prefix, "-c", confPath, "-g", global}
}

// TestFleetBehindNginx: configs/nginx-fleet.conf passes nginx -t, and a
// real nginx with it in front of a three-edge fleet serves listeners byte
// for byte, also after one edge is killed (nginx retries the next edge of
// its ring; only requests in flight at the dead edge may fail).
func TestFleetBehindNginx(t *testing.T) {
	const S = 32 << 10
	const songs = 6
	media := newDistinctMedia(t, songs, 4*S+500)
	f := newFleet(t, fleetOptions{n: 3, root: media.root, sliceBytes: S})
	var edges []string
	for _, h := range f.edges {
		edges = append(edges, strings.TrimPrefix(h.url, "http://"))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	listen := ln.Addr().String()
	ln.Close()
	conf, nginx := nginxFleetConf(t, listen, edges)
	args := nginxPrefix(t, conf)
	if out, err := exec.Command(nginx, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t configs/nginx-fleet.conf: %v\n%s", err, out)
	}
	cmd := exec.Command(nginx, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM: nginx's master stops its workers, then exits. A SIGKILL
		// of the master left a worker running after every test run.
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	lb := "http://" + listen
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", listen)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s: %v", listen, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	toks := make([]string, songs)
	for i := range toks {
		toks[i] = f.edges[0].play(distinctSong(i), 0)
	}
	play := func(round int) (failed int) {
		for i := range songs {
			for idx := range int64(4) {
				lo := idx*S + int64(round*131%1000)
				r, err := doRequest(f.edges[0].client, "GET", lb+"/t/"+toks[i]+"/"+media.key(i), nil, "Range", fmt.Sprintf("bytes=%d-%d", lo, lo+S/2))
				if err != nil || r.status != 206 || !bytes.Equal(r.body, media.data[i][lo:lo+S/2+1]) {
					failed++
					t.Errorf("round %d, song %d, slice %d through nginx: %v, status %d", round, i, idx, err, r.status)
				}
			}
		}
		return failed
	}
	play(0)
	f.edges[1].stop()
	play(1)
	play(2)
	t.Logf("origin fetches: %d for %d slices (an edge killed after the first round)", f.origin.requests(), songs*4)
	if n := f.origin.requests(); n > songs*4*2 {
		t.Errorf("%d origin fetches for %d slices", n, songs*4)
	}
}

// TestFleetCrossedMissesDoNotWaitForEachOther: two edges miss the same two
// slices at once, one owned by each. Each edge's flights hold slices of one
// owner, so the owner's flight for its slice goes to the origin and the
// other's request joins it: both answers come within the peer timeout
// (5 s here, so that a loaded machine under -race does not hit it), with
// one origin fetch per slice and no peer counted as failed. (Flights mixing
// owners made each edge's flight wait for the other's until the peer
// timeout, then both went to the origin.)
func TestFleetCrossedMissesDoNotWaitForEachOther(t *testing.T) {
	const S = 32 << 10
	media := newDistinctMedia(t, 1, 16*S)
	const timeout = 5 * time.Second
	f := newFleet(t, fleetOptions{n: 2, root: media.root, sliceBytes: S, peerTimeout: timeout})
	key := media.key(0)
	p := f.edges[0].edge.peers
	var idx int64 = -1
	for i := int64(0); i < 15; i++ {
		if p.Owner(key, i) != p.Owner(key, i+1) {
			idx = i
			break
		}
	}
	if idx < 0 {
		t.Fatal("no two neighbouring slices with different owners")
	}
	tok := f.edges[0].play(distinctSong(0), 0)
	rng := fmt.Sprintf("bytes=%d-%d", idx*S+10, (idx+1)*S+10)
	f.origin.delay.Store(int64(100 * time.Millisecond))
	began := time.Now()
	var wg sync.WaitGroup
	for e := range 2 {
		wg.Go(func() {
			if _, err := f.get(e, tok, key, rng, media.data[0]); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(began); took >= timeout {
		t.Errorf("crossed misses took %v (the peer timeout is %v)", took, timeout)
	}
	if n := f.origin.requestsFor(key); n != 2 {
		t.Errorf("%d origin fetches for two slices, want 2 (ranges %v)", n, f.origin.sentRanges())
	}
	for e, h := range f.edges {
		if got := h.metric("riff_edge_peer_failovers_total"); got != 0 {
			t.Errorf("edge %d counted %v peer failovers", e, got)
		}
	}
}

// TestFleetPeerRequestsAreNeverForwarded: a peer's request reaching an
// edge that does not own the slice (the asker found the owner dead) is
// served from that edge's tiers or the origin, never from another peer.
func TestFleetPeerRequestsAreNeverForwarded(t *testing.T) {
	const S = 32 << 10
	media := newDistinctMedia(t, 1, 2*S)
	f := newFleet(t, fleetOptions{n: 3, root: media.root, sliceBytes: S})
	key := media.key(0)
	rank := f.edges[0].edge.peers.Rank(key, 0, nil)
	owner, other := f.edges[rank[0]], f.edges[rank[2]]
	r := other.do("GET", other.admin+peer.Path(key, 0), "Range", fmt.Sprintf("bytes=0-%d", S-1), peer.SecretHeader, "fleet-secret")
	if r.status != 206 || !bytes.Equal(r.body, media.data[0][:S]) {
		t.Fatalf("peer request to a non-owner: %d, %d bytes", r.status, len(r.body))
	}
	if n := f.origin.requestsFor(key); n != 1 {
		t.Errorf("%d origin fetches, want 1 (by the edge asked)", n)
	}
	if got := owner.metric(`riff_edge_peer_requests_total{result="served"}`); got != 0 {
		t.Errorf("the owner served %v peer requests: the request was forwarded", got)
	}
	if got := other.metric("riff_edge_peer_fills_total"); got != 0 {
		t.Errorf("the edge asked filled %v runs from peers", got)
	}
}
