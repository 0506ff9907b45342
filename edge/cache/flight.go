package cache

import (
	"context"
	"fmt"
	"sync"
)

// Group coalesces concurrent fetches. A key names one unit a fetch produces
// (an object slice); one fetch may produce a run of consecutive keys, and a
// caller asking for keys that are already being fetched joins those fetches
// instead of starting its own.
//
// Each fetch runs in a goroutine of its own with its own context, so a
// caller that gives up (its Wait context ends) does not cancel it for the
// others. When the last interested caller leaves before the fetch is done,
// the fetch's context is cancelled and its keys are forgotten, so a later
// caller starts afresh rather than joining a fetch nobody wants. Every
// caller still waiting gets the fetch's value or its real error.
//
// The in-flight table is kept apart from the cache on purpose: the cache
// may drop or refuse what a fetch stores, the table never loses a fetch.
//
// A Group is safe for concurrent use. The zero value is not usable; call
// NewGroup.
type Group[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*Flight[K, V]
}

// NewGroup returns an empty Group.
func NewGroup[K comparable, V any]() *Group[K, V] {
	return &Group[K, V]{m: make(map[K]*Flight[K, V])}
}

// Flight is one fetch in progress or done. Its value and error are
// available through Wait once it is done.
type Flight[K comparable, V any] struct {
	g      *Group[K, V]
	keys   []K
	done   chan struct{}
	cancel context.CancelFunc
	val    V
	err    error

	// Guarded by g.mu.
	refs      int  // callers that hold a reference
	forgotten bool // keys removed from g.m
}

// Keys returns the keys the flight produces, in order. The caller must not
// modify them.
func (f *Flight[K, V]) Keys() []K { return f.keys }

// Claim returns the flights that will produce keys, holding one reference
// to each for the caller, who must give every one back with Wait or Leave.
// keys are consecutive units (for example slices 3, 4, 5 of one object).
// Keys already in flight join that flight. Keys for which cached reports
// true are skipped: cached is called with the group's lock held, which
// closes the window between a caller's cache miss and a fetch that stored
// its result and finished meanwhile; it must be quick and must not call
// back into the group. Every maximal run of the remaining keys is fetched
// by a new flight that calls fetch(ctx, run) in a new goroutine; fetch must
// honour ctx, which is cancelled when every caller has left.
//
// A flight stays joinable until fetch returns; fetch should therefore store
// its result where cached will find it before it returns.
//
// joined counts the flights in out that were already running (the caller
// coalesced onto them).
func (g *Group[K, V]) Claim(keys []K, cached func(K) bool, fetch func(ctx context.Context, run []K) (V, error)) (out []*Flight[K, V], joined int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	hold := func(f *Flight[K, V]) {
		for _, o := range out {
			if o == f {
				return
			}
		}
		f.refs++
		out = append(out, f)
	}
	runStart := -1
	flush := func(end int) {
		if runStart < 0 {
			return
		}
		f := g.start(keys[runStart:end], fetch)
		hold(f)
		runStart = -1
	}
	for i, k := range keys {
		if f, ok := g.m[k]; ok {
			flush(i)
			n := len(out)
			hold(f)
			if len(out) > n {
				joined++
			}
			continue
		}
		if cached != nil && cached(k) {
			flush(i)
			continue
		}
		if runStart < 0 {
			runStart = i
		}
	}
	flush(len(keys))
	return out, joined
}

// start registers a new flight for run and launches it. g.mu is held.
func (g *Group[K, V]) start(run []K, fetch func(context.Context, []K) (V, error)) *Flight[K, V] {
	ctx, cancel := context.WithCancel(context.Background())
	f := &Flight[K, V]{
		g:      g,
		keys:   append([]K(nil), run...),
		done:   make(chan struct{}),
		cancel: cancel,
	}
	for _, k := range f.keys {
		g.m[k] = f
	}
	go f.run(ctx, fetch)
	return f
}

func (f *Flight[K, V]) run(ctx context.Context, fetch func(context.Context, []K) (V, error)) {
	defer f.cancel()
	val, err := safeFetch(ctx, f.keys, fetch)
	f.g.mu.Lock()
	f.val, f.err = val, err
	f.g.forget(f)
	f.g.mu.Unlock()
	close(f.done)
}

// safeFetch turns a panic in fetch into an error, so that waiters are
// never left hanging.
func safeFetch[K comparable, V any](ctx context.Context, keys []K, fetch func(context.Context, []K) (V, error)) (val V, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("cache: fetch panicked: %v", p)
		}
	}()
	return fetch(ctx, keys)
}

// forget removes f's keys from the table. g.mu is held.
func (g *Group[K, V]) forget(f *Flight[K, V]) {
	if f.forgotten {
		return
	}
	f.forgotten = true
	for _, k := range f.keys {
		if g.m[k] == f {
			delete(g.m, k)
		}
	}
}

// Wait blocks until the flight is done or ctx ends, and gives back the
// caller's reference. It returns the fetch's value and error, or ctx's
// error if ctx ended first.
func (f *Flight[K, V]) Wait(ctx context.Context) (V, error) {
	select {
	case <-f.done:
		f.Leave()
		return f.val, f.err
	default:
	}
	select {
	case <-f.done:
		f.Leave()
		return f.val, f.err
	case <-ctx.Done():
		f.Leave()
		var zero V
		return zero, ctx.Err()
	}
}

// Leave gives back the caller's reference without waiting. The last caller
// to leave a flight that is not done cancels it.
func (f *Flight[K, V]) Leave() {
	g := f.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if f.refs <= 0 {
		panic("cache: Flight.Leave without a reference")
	}
	f.refs--
	if f.refs > 0 {
		return
	}
	select {
	case <-f.done:
		return
	default:
	}
	g.forget(f)
	f.cancel()
}

// InFlight returns the number of keys being fetched. It is meant for tests
// and metrics.
func (g *Group[K, V]) InFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}
