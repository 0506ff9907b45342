package cluster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// outcome is one request of the load.
type outcome struct {
	method string
	code   int // 0: no answer
	err    error
	at     time.Time
}

// TestKillUnderLoad: catalogd1 is killed with SIGKILL under a load of
// GETs (4 workers) and POSTs (2 workers) through the balancer. Every GET
// succeeds (a GET cut by the death is sent again to catalogd2 by HAProxy),
// at most one POST per POST worker fails (the ones that were in flight on
// catalogd1: never replayed), HAProxy's health check takes catalogd1 out,
// and once restarted it is put back and serves again.
func TestKillUnderLoad(t *testing.T) {
	c := start(t, 2)
	u := user(t, c.URL, "listener")

	var (
		mu       sync.Mutex
		outcomes []outcome
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	record := func(o outcome) {
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	const getters, posters = 4, 2
	for w := range getters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newClient(t, c.URL)
			cl.token = u.token
			paths := []string{"/users/me", "/search?q=tone", "/songs/trending", "/users/me/playlists"}
			for i := 0; !stop.Load(); i++ {
				code, _, _, err := cl.do("GET", paths[(w+i)%len(paths)], nil, nil)
				record(outcome{"GET", code, err, time.Now()})
			}
		}()
	}
	for range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newClient(t, c.URL)
			cl.token = u.token
			for i := 0; !stop.Load(); i++ {
				code, _, _, err := cl.do("POST", "/playlists", map[string]any{"name": fmt.Sprintf("load %d", i)}, nil)
				record(outcome{"POST", code, err, time.Now()})
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	defer func() { stop.Store(true); wg.Wait() }()

	warm := time.Now().Add(30 * time.Second)
	for counts(t, c, 0)[200] < 20 {
		if time.Now().After(warm) {
			t.Fatalf("catalogd1 answered %d requests in 30 s before the kill: the load does not reach it", counts(t, c, 0)[200])
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	killed := time.Now()
	if err := c.Kill(0); err != nil {
		t.Fatal(err)
	}
	down := waitState(t, c, "catalogd1", "DOWN", 30*time.Second)
	t.Logf("HAProxy marked catalogd1 DOWN %v after the kill", down.Round(time.Millisecond))
	time.Sleep(time.Second)
	if err := c.Restart(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	up := waitState(t, c, "catalogd1", "UP", 30*time.Second)
	t.Logf("catalogd1 UP %v after its restart", up.Round(time.Millisecond))
	deadline := time.Now().Add(30 * time.Second)
	for counts(t, c, 0)[200] < 20 { // its counters began again at the restart
		if time.Now().After(deadline) {
			t.Fatalf("the restarted catalogd1 answered %d requests in 30 s", counts(t, c, 0)[200])
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	var gets, posts, postFails int
	for _, o := range outcomes {
		ok := o.err == nil && (o.code == 200 || o.code == 201)
		switch o.method {
		case "GET":
			gets++
			if !ok {
				t.Errorf("GET %v after the kill: %d %v (a GET must be retried on the live instance)", o.at.Sub(killed).Round(time.Millisecond), o.code, o.err)
			}
		case "POST":
			posts++
			if !ok {
				postFails++
				t.Logf("POST %v after the kill: %d %v", o.at.Sub(killed).Round(time.Millisecond), o.code, o.err)
				if o.code != 502 && o.code != 0 {
					t.Errorf("a POST failed with %d, want 502 (cut on the killed instance)", o.code)
				}
				if d := o.at.Sub(killed); d < 0 || d > 5*time.Second {
					t.Errorf("a POST failed %v after the kill: only those in flight at the kill may fail", d)
				}
			}
		}
	}
	t.Logf("%d GETs, %d POSTs, %d POSTs failed", gets, posts, postFails)
	if postFails > posters {
		t.Errorf("%d POSTs failed, want at most %d (one in flight per POST worker)", postFails, posters)
	}
	if gets < 100 || posts < 20 {
		t.Errorf("only %d GETs and %d POSTs ran: not a load", gets, posts)
	}
}
