package cache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runOf is a fetch result for tests: the keys the fetch was asked for.
type runOf []int

func TestClaimCoalescesConcurrentCallers(t *testing.T) {
	g := NewGroup[int, runOf]()
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(ctx context.Context, run []int) (runOf, error) {
		calls.Add(1)
		<-release
		return runOf(run), nil
	}
	const n = 200
	var wg sync.WaitGroup
	results := make([]runOf, n)
	errs := make([]error, n)
	var joinedTotal atomic.Int32
	claimed := make(chan struct{}, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs, joined := g.Claim([]int{7}, nil, fetch)
			joinedTotal.Add(int32(joined))
			claimed <- struct{}{}
			if len(fs) != 1 {
				errs[i] = fmt.Errorf("got %d flights", len(fs))
				return
			}
			results[i], errs[i] = fs[0].Wait(context.Background())
		}()
	}
	for range n {
		<-claimed
	}
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Fatalf("fetch ran %d times, want 1", got)
	}
	if got := joinedTotal.Load(); got != n-1 {
		t.Errorf("joined = %d, want %d", got, n-1)
	}
	for i := range n {
		if errs[i] != nil || !slices.Equal(results[i], runOf{7}) {
			t.Fatalf("caller %d got %v, %v", i, results[i], errs[i])
		}
	}
	if got := g.InFlight(); got != 0 {
		t.Errorf("InFlight after done = %d, want 0", got)
	}
}

func TestClaimSplitsRunsAroundFlightsAndCachedKeys(t *testing.T) {
	g := NewGroup[int, runOf]()
	release := make(chan struct{})
	var mu sync.Mutex
	var runs [][]int
	fetch := func(ctx context.Context, run []int) (runOf, error) {
		mu.Lock()
		runs = append(runs, slices.Clone(run))
		mu.Unlock()
		<-release
		return runOf(run), nil
	}
	a, _ := g.Claim([]int{3, 4, 5}, nil, fetch)
	// 4 and 5 are in flight, 7 is cached: 6 and 8-9 need new flights.
	cached := func(k int) bool { return k == 7 }
	b, joined := g.Claim([]int{4, 5, 6, 7, 8, 9}, cached, fetch)
	if joined != 1 || len(b) != 3 || b[0] != a[0] {
		t.Fatalf("second claim: %d flights, joined %d, first shared = %v", len(b), joined, b[0] == a[0])
	}
	if got := [][]int{b[1].Keys(), b[2].Keys()}; !slices.EqualFunc(got, [][]int{{6}, {8, 9}}, slices.Equal) {
		t.Errorf("new runs = %v, want [[6] [8 9]]", got)
	}
	close(release)
	for _, f := range append(a, b...) {
		if _, err := f.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(runs) != 3 {
		t.Errorf("fetches = %v, want 3", runs)
	}
}

func TestCallerGivingUpDoesNotCancelOthers(t *testing.T) {
	g := NewGroup[int, runOf]()
	release := make(chan struct{})
	var fetchCtxErr atomic.Value
	fetch := func(ctx context.Context, run []int) (runOf, error) {
		<-release
		if err := ctx.Err(); err != nil {
			fetchCtxErr.Store(err)
		}
		return runOf(run), nil
	}
	first, _ := g.Claim([]int{1}, nil, fetch)
	second, _ := g.Claim([]int{1}, nil, fetch)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := first[0].Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled first caller: err = %v, want context.Canceled", err)
	}
	close(release)
	got, err := second[0].Wait(context.Background())
	if err != nil || !slices.Equal(got, runOf{1}) {
		t.Fatalf("second caller = %v, %v; want the bytes", got, err)
	}
	if err := fetchCtxErr.Load(); err != nil {
		t.Errorf("fetch saw %v: the first caller leaving cancelled it", err)
	}
}

func TestLastWaiterLeavingCancelsAndForgets(t *testing.T) {
	g := NewGroup[int, runOf]()
	started := make(chan struct{})
	cancelled := make(chan struct{})
	var calls atomic.Int32
	fetch := func(ctx context.Context, run []int) (runOf, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-ctx.Done()
			close(cancelled)
			return nil, ctx.Err()
		}
		return runOf(run), nil
	}
	fs, _ := g.Claim([]int{1}, nil, fetch)
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := fs[0].Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the fetch was not cancelled when its last waiter left")
	}
	// A new caller starts afresh instead of joining the abandoned fetch.
	fs2, joined := g.Claim([]int{1}, nil, fetch)
	if joined != 0 || fs2[0] == fs[0] {
		t.Fatal("a new caller joined an abandoned flight")
	}
	if got, err := fs2[0].Wait(context.Background()); err != nil || !slices.Equal(got, runOf{1}) {
		t.Fatalf("fresh flight = %v, %v", got, err)
	}
}

func TestEveryWaiterGetsTheRealError(t *testing.T) {
	g := NewGroup[int, runOf]()
	boom := errors.New("origin said 502")
	release := make(chan struct{})
	fetch := func(ctx context.Context, run []int) (runOf, error) {
		<-release
		return nil, boom
	}
	var fs []*Flight[int, runOf]
	for range 5 {
		f, _ := g.Claim([]int{1}, nil, fetch)
		fs = append(fs, f...)
	}
	close(release)
	for _, f := range fs {
		if _, err := f.Wait(context.Background()); !errors.Is(err, boom) {
			t.Errorf("err = %v, want %v", err, boom)
		}
	}
}

func TestPanickingFetchBecomesAnError(t *testing.T) {
	g := NewGroup[int, runOf]()
	fs, _ := g.Claim([]int{1}, nil, func(context.Context, []int) (runOf, error) { panic("kaboom") })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := fs[0].Wait(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the panic as an error", err)
	}
}

func TestCachedKeysStartNothing(t *testing.T) {
	g := NewGroup[int, runOf]()
	fs, _ := g.Claim([]int{1, 2}, func(int) bool { return true }, func(context.Context, []int) (runOf, error) {
		t.Error("fetch called for cached keys")
		return nil, nil
	})
	if len(fs) != 0 {
		t.Fatalf("got %d flights for cached keys", len(fs))
	}
}
