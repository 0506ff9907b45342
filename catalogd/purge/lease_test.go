package purge

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"riff/catalogd/outbox"
	"riff/catalogd/store"
	"riff/catalogd/store/storetest"
	"riff/internal/obs"
)

// tagged is a RoundTripper that marks each request with the dispatcher
// that sent it.
type tagged struct {
	tag string
	rt  http.RoundTripper
}

func (t tagged) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Test-Dispatcher", t.tag)
	return t.rt.RoundTrip(r)
}

// countingEdge answers every purge 200 and counts the requests per
// dispatcher.
type countingEdge struct {
	mu  sync.Mutex
	got map[string]int
}

func (c *countingEdge) count(tag string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.got[tag]
}

// dying is a lease that a killed process holds: it never releases.
type dying struct{ outbox.Lease }

func (dying) ReleaseLease(context.Context, string, string) error { return nil }

// TestOneDispatcher (issue 15, item 4): two dispatchers on one PostgreSQL
// database (two catalogd): only the lease holder sends; when it dies
// without releasing the lease, the other takes over within the lease term
// and a renewal.
func TestOneDispatcher(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	ce := &countingEdge{got: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ce.mu.Lock()
		ce.got[r.Header.Get("X-Test-Dispatcher")]++
		ce.mu.Unlock()
	}))
	defer srv.Close()
	signer := newSigner(t)
	const ttl = time.Second
	type instance struct {
		st   *store.Store
		obs  *obs.Obs
		d    *Dispatcher
		stop context.CancelFunc
		done chan struct{}
	}
	run := func(tag string) *instance {
		st, err := store.Open(ctx, dsn, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		in := &instance{st: st, obs: obs.New("catalogd", slog.New(slog.DiscardHandler)), done: make(chan struct{})}
		cfg := testConfig(signer, srv.URL)
		cfg.Client = &http.Client{Transport: tagged{tag, http.DefaultTransport}}
		cfg.Lease, cfg.LeaseTTL, cfg.Holder = dying{st}, ttl, tag
		if in.d, err = New(in.obs, st, cfg); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		in.stop = cancel
		go func() {
			defer close(in.done)
			in.d.Run(rctx)
		}()
		t.Cleanup(func() { cancel(); <-in.done })
		return in
	}
	leader := func(in *instance) bool { return in.d.out.Leader() }
	a := run("a")
	waitFor(t, 5*time.Second, func() bool { return leader(a) }, "a to take the lease")
	b := run("b")
	for range 5 {
		if err := a.st.EnqueuePurge(ctx, songA); err != nil {
			t.Fatal(err)
		}
		b.d.Kick()
		a.d.Kick()
		time.Sleep(100 * time.Millisecond)
	}
	last, err := a.st.PendingPurges(ctx, 0, 100)
	if err != nil || len(last) != 5 {
		t.Fatalf("outbox: %v, %v", last, err)
	}
	waitFor(t, 5*time.Second, func() bool { c, _ := a.st.PurgeCursor(ctx, srv.URL); return c >= last[4].ID }, "the purges to be acknowledged")
	time.Sleep(3 * ttl) // b had time to misbehave
	if ce.count("a") == 0 || ce.count("b") != 0 || leader(b) {
		t.Fatalf("deliveries a=%d b=%d (b leader: %v); want only a", ce.count("a"), ce.count("b"), leader(b))
	}
	if v := b.d.Detail().(Backlog); v.Dispatcher {
		t.Error("b's detail says it is the dispatcher")
	}

	// a dies without releasing the lease.
	a.stop()
	<-a.done
	killed := time.Now()
	sentA := ce.count("a")
	if err := b.st.EnqueuePurge(ctx, songB); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 4*ttl, func() bool { return ce.count("b") > 0 }, "b to take over and deliver")
	took := time.Since(killed)
	t.Logf("takeover and delivery %v after the holder died (lease term %v)", took.Round(time.Millisecond), ttl)
	if !leader(b) || ce.count("a") != sentA {
		t.Errorf("after takeover: b leader %v, a sent %d more", leader(b), ce.count("a")-sentA)
	}
}

// TestDispatcherCutOff: a holder that loses the database stops sending
// within its lease term, and the other instance takes over.
func TestDispatcherCutOff(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	ctx := context.Background()
	signer := newSigner(t)
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(obs.New("catalogd", slog.New(slog.DiscardHandler)), st, Config{Edges: []string{"http://127.0.0.1:1"},
		Signer: signer, Schedule: outbox.Schedule{Lease: st, LeaseTTL: time.Second, Holder: "a", PollInterval: 50 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { d.Close(); <-done }()
	waitFor(t, 5*time.Second, func() bool { return d.out.Leader() }, "a to take the lease")
	st.Close() // its connections are gone: renewals fail
	cut := time.Now()
	waitFor(t, 3*time.Second, func() bool { return !d.out.Leader() }, "a to stop sending")
	if el := time.Since(cut); el > 2*time.Second {
		t.Errorf("a stopped %v after losing the database, want within its term (1s) and a renewal, 2s allowing for a busy machine", el)
	}
	other, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	waitFor(t, 3*time.Second, func() bool {
		ok, err := other.AcquireLease(ctx, LeaseName, "b", time.Second)
		return err == nil && ok
	}, "b to take the lease")
}
