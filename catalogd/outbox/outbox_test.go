package outbox

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/internal/obs"
)

// memRows is an outbox in memory: rows 1..n created at created, a cursor
// per target, and targets that fail on chosen rows.
type memRows struct {
	mu       sync.Mutex
	n        int64
	created  time.Time
	batch    int
	cursors  map[string]int64
	got      map[string][]int64 // rows delivered, in order
	failAt   map[string]int64   // the row a target fails on while set
	failures map[string][]int   // Failed's failures argument, per target
	pruned   int
}

func newMemRows(n int64) *memRows {
	return &memRows{n: n, created: time.Now(), batch: 3, cursors: map[string]int64{}, got: map[string][]int64{},
		failAt: map[string]int64{}, failures: map[string][]int{}}
}

func (m *memRows) Cursor(_ context.Context, target string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cursors[target], nil
}

// Deliver delivers up to batch rows one by one, failing at failAt.
func (m *memRows) Deliver(_ context.Context, t *Target, cursor int64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cursor < m.n {
		t.SetBacklog(int(m.n-cursor), m.created)
	}
	for id := cursor + 1; id <= min(m.n, cursor+int64(m.batch)); id++ {
		if id == m.failAt[t.Name] {
			return cursor, errors.New("target down")
		}
		m.got[t.Name] = append(m.got[t.Name], id)
		m.cursors[t.Name] = id
		cursor = id
	}
	return cursor, nil
}

func (m *memRows) Prune(_ context.Context, targets []string, _ time.Time) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pruned++
	return 0, nil
}

func (m *memRows) Failed(t *Target, _ error, failures int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failures[t.Name] = append(m.failures[t.Name], failures)
}

func (m *memRows) add(k int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n += k
}

func (m *memRows) setFailAt(target string, id int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failAt[target] = id
}

func (m *memRows) delivered(target string) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.got[target])
}

func (m *memRows) failureCounts(target string) []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.failures[target])
}

func waitFor(t *testing.T, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func seq(from, to int64) []int64 {
	var s []int64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

var testNames = Names{Work: "test delivery", Lease: "test-dispatcher", Target: "edge", Rows: "rows"}

var testMetrics = Metrics{
	TargetPending: `test_pending{target=%q}`, TargetLag: `test_lag_seconds{target=%q}`,
	Pending: `test_outbox_pending`, Oldest: `test_oldest_seconds`, Pruned: `test_pruned_total`, Dispatcher: `test_dispatcher`,
}

func newTest(t *testing.T, rows Rows, sch Schedule, targets ...string) *Dispatcher {
	t.Helper()
	d, err := New(obs.New("test", slog.New(slog.DiscardHandler)), slog.New(slog.DiscardHandler), rows, targets, sch, testNames, testMetrics)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDeliversInOrderAndCatchesUp: each target gets every row once, in
// order; a target failing mid-batch keeps what it delivered, is retried
// with a growing failure count, does not hold the other back, and catches
// up from where it stopped once it works; new rows go out on Kick, long
// before the poll.
func TestDeliversInOrderAndCatchesUp(t *testing.T) {
	rows := newMemRows(10)
	rows.setFailAt("b", 5)
	d := newTest(t, rows, Schedule{PollInterval: time.Hour, BackoffMin: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
		PruneInterval: 10 * time.Millisecond}, "a", "b")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go d.Run(ctx)
	defer d.Close()

	waitFor(t, 5*time.Second, func() bool { return len(rows.delivered("a")) == 10 }, "a to get rows 1-10")
	waitFor(t, 5*time.Second, func() bool { return len(rows.failureCounts("b")) >= 3 }, "b to fail three times")
	if got := rows.delivered("b"); !slices.Equal(got, seq(1, 4)) {
		t.Fatalf("b delivered %v while failing at 5; want 1-4", got)
	}
	if fc := rows.failureCounts("b"); !slices.Equal(fc[:3], []int{1, 2, 3}) {
		t.Errorf("b's failure counts %v; want 1, 2, 3, …", fc)
	}
	if !d.Leader() {
		t.Error("a dispatcher without a lease does not report itself working")
	}

	rows.setFailAt("b", 0)
	waitFor(t, 5*time.Second, func() bool { return len(rows.delivered("b")) == 10 }, "b to catch up")
	if got := rows.delivered("b"); !slices.Equal(got, seq(1, 10)) {
		t.Fatalf("b delivered %v; want 1-10 once each, in order", got)
	}
	if n, _ := d.Targets()[1].Backlog(); n != 0 {
		t.Errorf("b's backlog is %d after catching up; want 0", n)
	}

	rows.add(2)
	d.Kick()
	waitFor(t, 2*time.Second, func() bool { return len(rows.delivered("a")) == 12 && len(rows.delivered("b")) == 12 },
		"Kick to deliver rows 11-12 (the poll is an hour)")
	waitFor(t, 2*time.Second, func() bool {
		rows.mu.Lock()
		defer rows.mu.Unlock()
		return rows.pruned > 0
	}, "a prune")
}

// TestReadyNamesLaggingTargets: Ready fails naming the target whose
// oldest pending row is past the threshold, with its last error, and
// passes once it has caught up.
func TestReadyNamesLaggingTargets(t *testing.T) {
	rows := newMemRows(4)
	rows.created = time.Now().Add(-time.Hour)
	rows.setFailAt("b", 1)
	d := newTest(t, rows, Schedule{PollInterval: 10 * time.Millisecond, BackoffMin: 5 * time.Millisecond, BackoffMax: 10 * time.Millisecond,
		LagThreshold: time.Minute}, "a", "b")
	go d.Run(t.Context())
	defer d.Close()
	// a delivers its rows at once, after which only b lags.
	waitFor(t, 5*time.Second, func() bool { return len(rows.delivered("a")) == 4 && len(rows.failureCounts("b")) >= 1 }, "a to deliver, b to fail")
	var msg string
	waitFor(t, 5*time.Second, func() bool {
		err := d.Ready(t.Context())
		msg = ""
		if err != nil {
			msg = err.Error()
		}
		return !strings.Contains(msg, "edge a")
	}, "a's backlog to clear")
	if !strings.Contains(msg, "edge b has 4 rows pending") || !strings.Contains(msg, "target down") {
		t.Fatalf("Ready: %q; want edge b's 4 pending rows and its last error", msg)
	}
	rows.setFailAt("b", 0)
	waitFor(t, 5*time.Second, func() bool { return d.Ready(t.Context()) == nil }, "Ready to pass once b caught up")
}

// TestNewRefusesBadTargets: no target, or one named twice.
func TestNewRefusesBadTargets(t *testing.T) {
	o := obs.New("test", slog.New(slog.DiscardHandler))
	for _, targets := range [][]string{nil, {"a", "b", "a"}} {
		if _, err := New(o, slog.New(slog.DiscardHandler), newMemRows(0), targets, Schedule{}, testNames, testMetrics); err == nil {
			t.Errorf("New with targets %q: no error", targets)
		}
	}
}

// TestRunTwiceAndClose: a second Run while running is an error; Close
// stops Run and is idempotent; Run after Close returns at once.
func TestRunTwiceAndClose(t *testing.T) {
	d := newTest(t, newMemRows(0), Schedule{PollInterval: 10 * time.Millisecond}, "a")
	done := make(chan error, 1)
	go func() { done <- d.Run(t.Context()) }()
	waitFor(t, 2*time.Second, d.Leader, "Run to start")
	if err := d.Run(t.Context()); err == nil {
		t.Error("a second Run while running: no error")
	}
	d.Close()
	if err := <-done; err != nil {
		t.Errorf("Run after Close: %v", err)
	}
	d.Close()
	if err := d.Run(t.Context()); err != nil {
		t.Errorf("Run after Close: %v; want nil at once", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	d := &Dispatcher{sch: Schedule{BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}}
	for n := 1; n <= 40; n++ {
		full := min(time.Second, 100*time.Millisecond<<min(n-1, 10))
		for range 50 {
			if got := d.backoff(n); got < full/2 || got > full {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, got, full/2, full)
			}
		}
	}
	// Jitter: the waits after the same number of failures differ.
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[d.backoff(3)] = true
	}
	if len(seen) < 5 {
		t.Errorf("backoff(3) took only %d distinct values in 20 draws", len(seen))
	}
}
