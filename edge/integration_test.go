package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// ffplay runs ffmpeg on url, decoding everything to nowhere, and fails the
// test if ffmpeg reports any error.
func ffplay(t *testing.T, url string, extra ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{"-v", "error", "-nostdin"}, extra...)
	args = append(args, "-i", url, "-f", "null", "-")
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("ffmpeg -i %s: %v\n%s", url, err, out)
	}
}

func TestFFmpegPlaysThroughEdge(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.play(songA, 0)
	for _, name := range []string{"master.m3u8", "manifest.mpd", "aac_128.m3u8", "ogg_128.ogg"} {
		t.Run(name, func(t *testing.T) {
			ffplay(t, h.object(tok, songA+name))
		})
	}
	// Everything again from a warm cache: the origin is not asked.
	before := h.origins[0].requests()
	ffplay(t, h.object(tok, songA+"master.m3u8"))
	if got := h.origins[0].requests(); got != before {
		t.Errorf("warm replay asked the origin %d more times", got-before)
	}
	if hits := h.metric(`riff_edge_cache_requests_total{result="hit"}`); hits <= 0 {
		t.Errorf("hit counter = %v", hits)
	}
}

func TestColdSliceIsFetchedOnce(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	// Slow the origin a little so that the requests really overlap.
	h.origins[0].delay.Store(int64(50 * time.Millisecond))
	key := songA + "aac_320.mp4"
	url := h.object(h.play(songA, 0), key)
	want := h.direct("GET", key, "Range", "bytes=1000-30999").body
	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := doRequest(h.client, "GET", url, nil, "Range", "bytes=1000-30999")
			switch {
			case err != nil:
				errs <- err
			case r.status != 206 || !bytes.Equal(r.body, want):
				errs <- fmt.Errorf("status %d, %d bytes", r.status, len(r.body))
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := h.origins[0].requestsFor(key); got != 1 {
		t.Errorf("%d concurrent cold requests made %d origin fetches, want 1", n, got)
	}
	if got := h.metric("riff_edge_coalesced_waiters_total"); got < 1 {
		t.Errorf("coalesced waiters = %v", got)
	}
}

func TestClientGivingUpDoesNotFailOthers(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.origins[0].delay.Store(int64(300 * time.Millisecond))
	key := songA + "aac_128.mp4"
	url := h.object(h.play(songA, 0), key)
	want := h.direct("GET", key, "Range", "bytes=0-99").body
	// The first client hangs up long before the origin answers.
	quitter := make(chan error, 1)
	go func() {
		c := &fasthttp.Client{ReadTimeout: 50 * time.Millisecond}
		_, err := doRequest(c, "GET", url, nil, "Range", "bytes=0-99")
		quitter <- err
	}()
	time.Sleep(20 * time.Millisecond)
	var wg sync.WaitGroup
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := doRequest(h.client, "GET", url, nil, "Range", "bytes=0-99")
			if err != nil || r.status != 206 || !bytes.Equal(r.body, want) {
				t.Errorf("waiter: %v %d %d bytes", err, r.status, len(r.body))
			}
		}()
	}
	wg.Wait()
	if err := <-quitter; err == nil {
		t.Error("the quitting client got an answer; the test did not test anything")
	}
	if got := h.origins[0].requestsFor(key); got != 1 {
		t.Errorf("origin fetches = %d, want 1", got)
	}
}

func TestPurgeMakesNextRequestAMiss(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.play("artists/1/", 0)
	key := songA + "aac_64.mp4"
	other := songC + "aac_64.mp4"
	get := func(key, wantCache string) {
		t.Helper()
		tok := tok
		if strings.HasPrefix(key, "artists/5/") {
			tok = h.play("artists/5/", 0)
		}
		r := h.do("GET", h.object(tok, key), "Range", "bytes=0-999")
		if r.status != 206 || r.get("X-Cache") != wantCache {
			t.Fatalf("GET %s = %d X-Cache %q, want 206 %s", key, r.status, r.get("X-Cache"), wantCache)
		}
	}
	get(key, "MISS")
	get(key, "HIT")
	get(other, "MISS")
	purge := func(token string, prefixes ...string) reply {
		t.Helper()
		body, _ := json.Marshal(map[string][]string{"prefixes": prefixes})
		r, err := doRequest(h.client, "POST", h.admin+"/purge", body, "Authorization", "Bearer "+token)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := purge(h.purgeToken("artists/1/"), "artists/1/albums/2")
	if r.status != 200 || !strings.Contains(string(r.body), `"prefix":"artists/1/albums/2/"`) {
		t.Fatalf("purge = %d %s", r.status, r.body)
	}
	n := h.origins[0].requestsFor(key)
	get(key, "MISS")
	if h.origins[0].requestsFor(key) != n+1 {
		t.Error("the MISS after the purge did not go to the origin")
	}
	get(key, "HIT")
	get(other, "HIT") // another artist is untouched

	// Refusals: the token must cover every prefix; bad prefixes are 400;
	// nothing is purged when one prefix is refused.
	for _, tc := range []struct {
		token    string
		prefixes []string
		want     int
	}{
		{h.purgeToken("artists/1/albums/2/"), []string{"artists/1/"}, 403},
		{h.purgeToken("artists/1/"), []string{"artists/1/albums/2/", "artists/5/"}, 403},
		{h.purgeToken("artists/1/"), []string{""}, 403},
		{h.purgeToken("artists/1/"), []string{"artists/1/albums/"}, 400},
		{h.purgeToken("artists/1/"), []string{"artists/1/../5/"}, 400},
		{h.purgeToken("artists/1/"), []string{"originals/3/"}, 400},
		{h.purgeToken("artists/1/"), nil, 400},
		{h.play("artists/", 0), []string{"artists/1/"}, 403},
		{"garbage", []string{"artists/1/"}, 403},
	} {
		if r := purge(tc.token, tc.prefixes...); r.status != tc.want {
			t.Errorf("purge %q = %d %s, want %d", tc.prefixes, r.status, r.body, tc.want)
		}
	}
	get(key, "HIT")
	if r, _ := doRequest(h.client, "POST", h.admin+"/purge", []byte(`{"prefixes":["artists/1/"]}`)); r.status != 401 {
		t.Errorf("purge without a token = %d, want 401", r.status)
	}
	if r := purge(h.purgeToken("artists/"), ""); r.status != 200 {
		t.Fatalf("purge everything = %d %s", r.status, r.body)
	}
	get(other, "MISS")
}

func TestFetchBeforePurgeDoesNotRepopulate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := songA + "aac_64.mp4"
	url := h.object(h.play(songA, 0), key)
	h.origins[0].delay.Store(int64(300 * time.Millisecond))
	done := make(chan reply)
	go func() {
		r, _ := doRequest(h.client, "GET", url, nil, "Range", "bytes=0-99")
		done <- r
	}()
	time.Sleep(100 * time.Millisecond) // the fetch is at the origin now
	purgeAll(t, h)
	if r := <-done; r.status != 206 {
		t.Fatalf("in-flight request = %d", r.status)
	}
	h.origins[0].delay.Store(0)
	if r := h.do("GET", url, "Range", "bytes=0-99"); r.get("X-Cache") != "MISS" {
		t.Errorf("after the purge: X-Cache %q, want MISS (the old fetch filled the new generation)", r.get("X-Cache"))
	}
	if got := h.origins[0].requestsFor(key); got != 2 {
		t.Errorf("origin fetches = %d, want 2", got)
	}
}

func TestFailoverToSecondOrigin(t *testing.T) {
	h := newHarness(t, harnessOptions{origins: 2})
	tok := h.play(songA, 0)
	ffplay(t, h.object(tok, songA+"aac_64.m3u8"))
	primary, fallback := h.origins[0], h.origins[1]
	if primary.requests() == 0 || fallback.requests() != 0 {
		t.Fatalf("before the kill: primary %d, fallback %d requests", primary.requests(), fallback.requests())
	}
	primary.kill()
	// New renditions come through the fallback; the breaker opens after
	// two failures, after which the dead origin is not even tried.
	ffplay(t, h.object(tok, songA+"master.m3u8"))
	ffplay(t, h.object(tok, songA+"manifest.mpd"))
	if fallback.requests() == 0 {
		t.Fatal("the fallback was never asked")
	}
	if got := h.metric(fmt.Sprintf(`riff_edge_origin_breaker_state{origin=%q}`, strings.TrimPrefix(primary.url, "http://"))); got != float64(BreakerOpen) {
		t.Errorf("primary breaker state = %v, want open (%d)", got, BreakerOpen)
	}
	if r := h.do("GET", h.admin+"/readyz"); r.status != 200 {
		t.Errorf("readyz with one origin left = %d", r.status)
	}
	fallback.kill()
	// Cached objects still play with every origin down: a hit never waits.
	ffplay(t, h.object(tok, songA+"master.m3u8"))
	r := h.do("GET", h.object(tok, songB+"aac_64.mp4"))
	if r.status != 403 { // songB is outside this token
		t.Errorf("other song = %d", r.status)
	}
	r = h.do("GET", h.object(h.play(songB, 0), songB+"aac_64.mp4"))
	if r.status != 502 {
		t.Errorf("uncached object with every origin down = %d, want 502", r.status)
	}
	// Both breakers open now: not ready.
	h.do("GET", h.object(h.play(songB, 0), songB+"aac_128.mp4"))
	if r := h.do("GET", h.admin+"/readyz"); r.status != 503 {
		t.Errorf("readyz with every breaker open = %d, want 503", r.status)
	}
}

func TestTierFiltering(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	free := h.play(songA, 128)
	for _, name := range []string{"master.m3u8", "manifest.mpd"} {
		r := h.do("GET", h.object(free, songA+name))
		if r.status != 200 {
			t.Fatalf("%s = %d", name, r.status)
		}
		if bytes.Contains(r.body, []byte("aac_320")) || !bytes.Contains(r.body, []byte("aac_128")) || !bytes.Contains(r.body, []byte("aac_64")) {
			t.Errorf("free-tier %s:\n%s", name, r.body)
		}
		if cc := r.get("Cache-Control"); !strings.HasPrefix(cc, "private") {
			t.Errorf("%s Cache-Control = %q, want private", name, cc)
		}
		full := h.do("GET", h.object(h.play(songA, 320), songA+name))
		if !bytes.Contains(full.body, []byte("aac_320")) || full.get("ETag") == r.get("ETag") {
			t.Errorf("premium %s lacks 320 or shares the free ETag %s", name, r.get("ETag"))
		}
		ffplay(t, h.object(free, songA+name))
	}
	// The 320 rendition itself is refused, not only hidden.
	for _, name := range []string{"aac_320.mp4", "aac_320.m3u8"} {
		if r := h.do("GET", h.object(free, songA+name)); r.status != 403 {
			t.Errorf("free-tier %s = %d, want 403", name, r.status)
		}
	}
	// A tier below every rung has nothing to play.
	tiny := h.play(songA, 32)
	for _, name := range []string{"master.m3u8", "manifest.mpd"} {
		if r := h.do("GET", h.object(tiny, songA+name)); r.status != 403 {
			t.Errorf("mbr=32 %s = %d, want 403", name, r.status)
		}
	}
	if got := h.metric(`riff_edge_token_refusals_total{reason="tier"}`); got != 4 {
		t.Errorf("tier refusals = %v, want 4", got)
	}
}

func TestPathTraversalIsRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	tok := h.play("artists/1/", 0)
	for _, p := range []string{
		"artists/1/../../originals/3/up.wav",
		"artists/1/%2e%2e/%2e%2e/originals/3/up.wav",
		"artists/1/%2E%2E%2F%2E%2E%2Foriginals/3/up.wav",
		"artists/1/..%2f..%2foriginals/3/up.wav",
		"artists/1/%252e%252e/x",
		"artists/1/..%5c..%5coriginals",
		"artists/1/albums/2/songs/3/v1/./master.m3u8",
		"artists/1//albums/2/songs/3/v1/master.m3u8",
		"artists/1/albums/2/songs/3/v1/master.m3u8%00",
		"originals/3/up.wav",
	} {
		r := h.do("GET", h.url+"/t/"+tok+"/"+p)
		if r.status != 400 && r.status != 403 {
			t.Errorf("%s = %d %s, want 400 or 403", p, r.status, r.body)
		}
	}
	if n := h.origins[0].requests(); n != 0 {
		t.Errorf("traversal attempts reached the origin %d times", n)
	}
}

func TestCORSAndMethods(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	url := h.object(h.play(songA, 0), songA+"aac_64.mp4")
	r := h.do("OPTIONS", url, "Origin", "https://player.example", "Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "range")
	if r.status != 204 || r.get("Access-Control-Allow-Origin") != "*" || !strings.Contains(r.get("Access-Control-Allow-Headers"), "Range") {
		t.Errorf("preflight = %d %v", r.status, r.header)
	}
	r = h.do("GET", url, "Range", "bytes=0-9")
	if r.get("Access-Control-Allow-Origin") != "*" || !strings.Contains(r.get("Access-Control-Expose-Headers"), "Content-Range") {
		t.Errorf("GET CORS headers: %v", r.header)
	}
	if r := h.do("POST", url); r.status != 405 || r.get("Allow") == "" {
		t.Errorf("POST = %d Allow %q", r.status, r.get("Allow"))
	}
	if r := h.do("GET", h.url+"/nope"); r.status != 404 {
		t.Errorf("GET /nope = %d", r.status)
	}
	if r := h.do("GET", h.object(h.play(songA, 0), songA+"missing.mp4")); r.status != 404 {
		t.Errorf("missing object = %d", r.status)
	}
}

func TestShutdownLetsInFlightResponsesFinish(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.origins[0].delay.Store(int64(300 * time.Millisecond))
	url := h.object(h.play(songA, 0), songA+"aac_128.mp4")
	done := make(chan reply, 1)
	go func() {
		r, err := doRequest(h.client, "GET", url, nil, "Range", "bytes=0-99")
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(100 * time.Millisecond) // the request waits on the origin
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.edge.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	if r := <-done; r.status != 206 || len(r.body) != 100 {
		t.Errorf("in-flight request = %d, %d bytes; want it finished", r.status, len(r.body))
	}
	if _, err := doRequest(h.client, "GET", url, nil); err == nil {
		t.Error("a new request was served after Shutdown")
	}
}

// TestMissingObjectsAreRememberedBriefly: a valid token's holder asking for
// keys that do not exist reaches the origin once per key per NegativeTTL,
// not once per request; a purge forgets at once.
func TestMissingObjectsAreRememberedBriefly(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: func(c *Config) { c.NegativeTTL = time.Hour }})
	tok := h.play(songA, 0)
	for _, name := range []string{"nothing.mp4", "nothing.m3u8"} {
		key := songA + name
		for i := range 5 {
			r := h.do("GET", h.object(tok, key), "Range", "bytes=0-99")
			if r.status != 404 {
				t.Fatalf("%s request %d: %d, want 404", name, i, r.status)
			}
			if i > 0 && r.get("X-Cache") != "HIT" {
				t.Errorf("%s request %d: X-Cache %q, want HIT (remembered)", name, i, r.get("X-Cache"))
			}
			h.edge.cache.Wait()
		}
		if n := h.origins[0].requestsFor(key); n != 1 {
			t.Errorf("%s: the origin was asked %d times, want 1", name, n)
		}
	}
	if got := h.metric("riff_edge_negative_hits_total"); got != 8 {
		t.Errorf("riff_edge_negative_hits_total = %v, want 8", got)
	}
	// A purge of the song forgets the 404: the next request asks again.
	song := strings.TrimSuffix(songA, "v1/")
	pr, err := doRequest(h.client, "POST", h.admin+"/purge", []byte(`{"prefixes":["`+song+`"]}`),
		"Authorization", "Bearer "+h.purgeToken(song))
	if err != nil || pr.status != 200 {
		t.Fatalf("purge: %v %d %s", err, pr.status, pr.body)
	}
	if r := h.do("GET", h.object(tok, songA+"nothing.mp4")); r.status != 404 {
		t.Fatalf("after purge: %d", r.status)
	}
	if n := h.origins[0].requestsFor(songA + "nothing.mp4"); n != 2 {
		t.Errorf("after a purge the origin was asked %d times in all, want 2", n)
	}
}

// TestNegativeCachingCanBeOff: with NegativeTTL < 0 every miss asks.
func TestNegativeCachingCanBeOff(t *testing.T) {
	h := newHarness(t, harnessOptions{cfg: func(c *Config) { c.NegativeTTL = -1 }})
	tok := h.play(songA, 0)
	for range 3 {
		if r := h.do("GET", h.object(tok, songA+"nothing.mp4")); r.status != 404 {
			t.Fatalf("status %d", r.status)
		}
	}
	if n := h.origins[0].requestsFor(songA + "nothing.mp4"); n != 3 {
		t.Errorf("the origin was asked %d times, want 3", n)
	}
}

// TestReadyzProbesOrigins: /readyz asks the origins themselves, so a
// refused secret or dead origins make the edge unready before any
// listener's request fails, and one healthy origin is enough.
func TestReadyzProbesOrigins(t *testing.T) {
	t.Run("wrong secret", func(t *testing.T) {
		h := newHarness(t, harnessOptions{ocfg: func(c *OriginConfig) { c.Secret = "wrong" }})
		r := h.do("GET", h.admin+"/readyz")
		if r.status != 503 || !strings.Contains(string(r.body), "origin") {
			t.Errorf("readyz with a refused secret = %d %s, want 503", r.status, r.body)
		}
	})
	t.Run("one of two dead", func(t *testing.T) {
		h := newHarness(t, harnessOptions{origins: 2})
		if r := h.do("GET", h.admin+"/readyz"); r.status != 200 {
			t.Fatalf("readyz with two origins = %d %s", r.status, r.body)
		}
		h.origins[0].kill()
		if r := h.do("GET", h.admin+"/readyz"); r.status != 200 {
			t.Errorf("readyz with one origin left = %d %s", r.status, r.body)
		}
		h.origins[1].kill()
		if r := h.do("GET", h.admin+"/readyz"); r.status != 503 {
			t.Errorf("readyz with no origin = %d %s, want 503", r.status, r.body)
		}
	})
}
