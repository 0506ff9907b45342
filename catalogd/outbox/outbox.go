package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"riff/internal/obs"
)

// Lease is a lease held by one holder at a time; *store.Store is one (see
// store.AcquireLease).
type Lease interface {
	// AcquireLease takes or renews lease name for holder for ttl and
	// reports whether holder holds it now.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives lease name up if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Schedule paces a Dispatcher; zero fields take the defaults shown.
// Packages purge and replicate embed it in their Config.
type Schedule struct {
	// PollInterval is how often an idle target looks for new rows (Kick
	// wakes them at once). Default 1s.
	PollInterval time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed attempt: it
	// starts at BackoffMin, doubles with each consecutive failure up to
	// BackoffMax, and is jittered to between half and all of that.
	// Defaults 250ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// LagThreshold: Ready fails while a target's oldest pending row is
	// older than this. Default 1m (package replicate's is 10m).
	LagThreshold time.Duration
	// Retain keeps rows every target has this long (for targets that
	// appear later, see package purge); PruneInterval is how often they
	// are deleted. Defaults 1h and 1m.
	Retain, PruneInterval time.Duration
	// Now is the clock for ages. Default time.Now.
	Now func() time.Time
	// Lease, when set, makes the Dispatcher work only while it holds the
	// lease (see the package doc). Nil: it always works (one instance,
	// SQLite).
	Lease Lease
	// LeaseTTL is the lease's term, renewed every third of it: the longest
	// a dead holder delays the outbox. Default 10s.
	LeaseTTL time.Duration
	// Holder names this instance in the lease. Default: random.
	Holder string
}

func (s *Schedule) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&s.PollInterval, time.Second)
	def(&s.BackoffMin, 250*time.Millisecond)
	def(&s.BackoffMax, 30*time.Second)
	def(&s.LagThreshold, time.Minute)
	def(&s.Retain, time.Hour)
	def(&s.PruneInterval, time.Minute)
	def(&s.LeaseTTL, 10*time.Second)
	s.BackoffMax = max(s.BackoffMax, s.BackoffMin)
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Holder == "" {
		s.Holder = fmt.Sprintf("catalogd-%016x", rand.Uint64())
	}
}

// Rows is the user's side of a Dispatcher: its outbox, and what delivering
// a row means.
type Rows interface {
	// Cursor returns target's cursor: the id of the last row it has, 0
	// for a target never seen (it then gets every row still in the
	// outbox).
	Cursor(ctx context.Context, target string) (int64, error)
	// Deliver delivers rows after cursor to t, in id order, and returns
	// the id of the last row delivered: cursor itself when none was
	// pending (t then waits for Kick or the poll). With an error it
	// returns the id of the last row delivered before the failure; the
	// loop backs off and calls again from there. It reports t's backlog
	// (Target.SetBacklog) as it learns it.
	Deliver(ctx context.Context, t *Target, cursor int64) (int64, error)
	// Prune deletes the rows that every one of targets has and that were
	// created before before, and returns how many it deleted.
	Prune(ctx context.Context, targets []string, before time.Time) (int64, error)
	// Failed counts and logs t's failures-th failed attempt in a row; the
	// loop then backs off. It is not called for a failure that is only
	// the Dispatcher stopping.
	Failed(t *Target, err error, failures int)
}

// Names names a Dispatcher's things in its logs and in Ready's error.
type Names struct {
	Work   string // what the Dispatcher does: "purge delivery", "replication"
	Lease  string // the lease's name in the database
	Target string // what a target is: "edge", "region"
	Rows   string // what its rows are: "purges", "replications"
}

// Metrics names the metrics a Dispatcher registers. TargetPending and
// TargetLag are formats with one %q, the target's name.
type Metrics struct {
	TargetPending string // rows the target does not have yet
	TargetLag     string // age of the oldest of them, seconds
	Pending       string // the largest TargetPending
	Oldest        string // the largest TargetLag
	Pruned        string // rows deleted (a counter)
	Dispatcher    string // 1 while this instance works (holds the lease), else 0
}

// Dispatcher runs the delivery of an outbox to its targets (see the
// package doc). New has no side effects beyond registering metrics; Run
// works until its context ends or Close is called; Close is idempotent and
// works whether or not Run was called. Kick, Ready and the accessors are
// safe for concurrent use at any time.
type Dispatcher struct {
	sch     Schedule
	names   Names
	rows    Rows
	log     *slog.Logger
	targets []*Target
	tnames  []string // the targets' names, in order
	pruned  *metrics.Counter
	leader  atomic.Bool // working now

	mu      sync.Mutex
	closed  bool
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// Target is one target's delivery state.
type Target struct {
	Name string
	kick chan struct{} // capacity 1: a pending wake-up

	mu      sync.Mutex
	pending int       // rows after the cursor
	oldest  time.Time // creation of the first of them; zero when none
	lastErr string    // the last failure, for Ready
}

// New returns a Dispatcher of rows to targets (distinct, not empty),
// logging to log and registering its metrics m on o.
func New(o *obs.Obs, log *slog.Logger, rows Rows, targets []string, sch Schedule, names Names, m Metrics) (*Dispatcher, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("outbox: no %ss", names.Target)
	}
	sch.defaults()
	d := &Dispatcher{sch: sch, names: names, rows: rows, log: log, done: make(chan struct{})}
	set := o.Metrics
	for _, name := range targets {
		if slices.Contains(d.tnames, name) {
			return nil, fmt.Errorf("%s %s listed twice", names.Target, name)
		}
		t := &Target{Name: name, kick: make(chan struct{}, 1)}
		set.GetOrCreateGauge(fmt.Sprintf(m.TargetPending, name), func() float64 {
			n, _ := t.Backlog()
			return float64(n)
		})
		set.GetOrCreateGauge(fmt.Sprintf(m.TargetLag, name), func() float64 { return d.Lag(t).Seconds() })
		d.targets = append(d.targets, t)
		d.tnames = append(d.tnames, name)
	}
	set.GetOrCreateGauge(m.Pending, func() float64 {
		n := 0
		for _, t := range d.targets {
			p, _ := t.Backlog()
			n = max(n, p)
		}
		return float64(n)
	})
	set.GetOrCreateGauge(m.Oldest, func() float64 {
		var lag time.Duration
		for _, t := range d.targets {
			lag = max(lag, d.Lag(t))
		}
		return lag.Seconds()
	})
	d.pruned = set.GetOrCreateCounter(m.Pruned)
	set.GetOrCreateGauge(m.Dispatcher, func() float64 {
		if d.leader.Load() {
			return 1
		}
		return 0
	})
	return d, nil
}

// Names returns the targets' names, in the order given to New.
func (d *Dispatcher) Names() []string { return slices.Clone(d.tnames) }

// Targets returns the targets, in the order given to New.
func (d *Dispatcher) Targets() []*Target { return slices.Clone(d.targets) }

// Leader reports whether this instance works now (holds the lease).
func (d *Dispatcher) Leader() bool { return d.leader.Load() }

// LagThreshold is Schedule.LagThreshold after defaults.
func (d *Dispatcher) LagThreshold() time.Duration { return d.sch.LagThreshold }

// Run works until ctx ends or Close is called, then returns nil (at once
// if Close came first). With Schedule.Lease it works only while it holds
// the lease, and releases it on the way out. It returns an error if the
// Dispatcher is already running.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	if d.running {
		d.mu.Unlock()
		return errors.New(d.names.Work + ": dispatcher already running")
	}
	d.running = true
	ctx, d.cancel = context.WithCancel(ctx)
	d.mu.Unlock()
	defer close(d.done)
	defer d.cancel()

	if d.sch.Lease == nil {
		d.leader.Store(true)
		d.log.Info(d.names.Work+" started", d.names.Target+"s", d.tnames)
		d.work(ctx)
		d.leader.Store(false)
		return nil
	}
	d.log.Info(d.names.Work+" started; working while this instance holds the lease", d.names.Target+"s", d.tnames, "holder", d.sch.Holder)
	d.lead(ctx)
	return nil
}

// Close stops Run and waits for it to return. It is idempotent, and safe
// to call when Run was never called.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	d.closed = true
	running := d.running
	if running {
		d.cancel()
	}
	d.mu.Unlock()
	if running {
		<-d.done
	}
	return nil
}

// Kick wakes every idle target to look for new rows now, instead of at its
// next poll. Call it after committing a change that wrote rows. A target
// waiting out a backoff keeps waiting. Kick never blocks.
func (d *Dispatcher) Kick() {
	for _, t := range d.targets {
		select {
		case t.kick <- struct{}{}:
		default:
		}
	}
}

// Ready reports an error naming every target whose oldest pending row is
// older than Schedule.LagThreshold; use it as a readiness check.
func (d *Dispatcher) Ready(context.Context) error {
	var lagging []string
	for _, t := range d.targets {
		lag := d.Lag(t)
		if lag <= d.sch.LagThreshold {
			continue
		}
		t.mu.Lock()
		msg := fmt.Sprintf("%s %s has %d %s pending, the oldest %s old", d.names.Target, t.Name, t.pending, d.names.Rows, lag.Round(time.Millisecond))
		if t.lastErr != "" {
			msg += " (last error: " + t.lastErr + ")"
		}
		t.mu.Unlock()
		lagging = append(lagging, msg)
	}
	if len(lagging) > 0 {
		return errors.New(strings.Join(lagging, "; "))
	}
	return nil
}

// Lag is the age of t's oldest pending row, 0 when none.
func (d *Dispatcher) Lag(t *Target) time.Duration {
	_, oldest := t.Backlog()
	if oldest.IsZero() {
		return 0
	}
	return max(0, d.sch.Now().Sub(oldest))
}

// Backlog returns the rows after t's cursor and the creation of the first
// of them, as last reported (0 and zero when none, or while this instance
// does not work).
func (t *Target) Backlog() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.pending, t.oldest
}

// SetBacklog reports n rows after t's cursor, the first created at oldest.
func (t *Target) SetBacklog(n int, oldest time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending, t.oldest = n, oldest
}

func (t *Target) setErr(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil {
		t.lastErr = ""
	} else {
		t.lastErr = err.Error()
	}
}

// work runs every target's loop and the pruning until ctx ends.
func (d *Dispatcher) work(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range d.targets {
		wg.Go(func() { d.serve(ctx, t) })
	}
	wg.Go(func() { d.prune(ctx) })
	wg.Wait()
}

// lead campaigns for the lease until ctx ends: every LeaseTTL/3 it tries
// to take it; once it holds it, it works (see work) and renews at the same
// pace. It stops working when the lease is lost (another holder has it) or
// when a whole term passed without a successful renewal, counted on the
// local clock from the start of the last successful renewal, which the
// database's expiry can only follow. On a clean stop (ctx ends) it
// releases the lease.
func (d *Dispatcher) lead(ctx context.Context) {
	ttl, every := d.sch.LeaseTTL, d.sch.LeaseTTL/3
	acquire := func() (bool, time.Time, error) {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		ok, err := d.sch.Lease.AcquireLease(actx, d.names.Lease, d.sch.Holder, ttl)
		return ok, start, err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for ctx.Err() == nil {
		ok, start, err := acquire()
		if err != nil && ctx.Err() == nil {
			d.log.Warn(d.names.Work+" lease", "err", err)
		}
		if !ok {
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			continue
		}
		deadline := start.Add(ttl)
		d.leader.Store(true)
		d.log.Info(d.names.Work+" lease taken: this instance works", "holder", d.sch.Holder)
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.work(lctx)
		}()
		why := ""
		for why == "" {
			select {
			case <-ctx.Done():
				why = "stopping"
				continue
			case <-time.After(time.Until(deadline)):
				why = "lease not renewed within its term"
				continue
			case <-t.C:
			}
			ok, start, err := acquire()
			switch {
			case ok:
				deadline = start.Add(ttl)
			case err == nil:
				why = "lease taken by another instance"
			case ctx.Err() == nil:
				d.log.Warn("renewing "+d.names.Work+" lease", "err", err, "left", time.Until(deadline).Round(time.Millisecond))
			}
		}
		stop()
		<-done
		d.leader.Store(false)
		for _, t := range d.targets { // the next holder reports the backlog
			t.SetBacklog(0, time.Time{})
			t.setErr(nil)
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			if err := d.sch.Lease.ReleaseLease(rctx, d.names.Lease, d.sch.Holder); err != nil {
				d.log.Warn("releasing "+d.names.Work+" lease", "err", err)
			}
			cancel()
			return
		}
		d.log.Warn(d.names.Work+": stopped working", "reason", why)
	}
}

// serve is t's loop: deliver every row after its cursor, in order, until
// ctx ends.
func (d *Dispatcher) serve(ctx context.Context, t *Target) {
	cursor := int64(-1) // not read yet
	failures := 0
	// fail counts and logs a failed step and waits out the backoff.
	fail := func(err error) {
		if ctx.Err() != nil {
			return // stopping: not a failure
		}
		failures++
		t.setErr(err)
		d.rows.Failed(t, err, failures)
		sleep(ctx, d.backoff(failures))
	}
	for ctx.Err() == nil {
		if cursor < 0 {
			c, err := d.rows.Cursor(ctx, t.Name)
			if err != nil {
				fail(err)
				continue
			}
			cursor = c
		}
		next, err := d.rows.Deliver(ctx, t, cursor)
		delivered := next != cursor
		if delivered {
			if failures > 0 {
				d.log.Info(d.names.Target+" takes "+d.names.Rows+" again", d.names.Target, t.Name, "after_failures", failures)
			}
			failures = 0
			cursor = next
		}
		if err != nil {
			fail(err)
			continue
		}
		failures = 0
		t.setErr(nil)
		if delivered {
			continue
		}
		t.SetBacklog(0, time.Time{})
		select {
		case <-ctx.Done():
		case <-t.kick:
		case <-time.After(d.sch.PollInterval):
		}
	}
}

// prune deletes the rows every target has every PruneInterval.
func (d *Dispatcher) prune(ctx context.Context) {
	t := time.NewTicker(d.sch.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := d.rows.Prune(ctx, d.tnames, d.sch.Now().Add(-d.sch.Retain))
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("pruning the "+d.names.Work+" outbox", "err", err)
			}
			continue
		}
		if n > 0 {
			d.pruned.Add(int(n))
			d.log.Debug("pruned the "+d.names.Work+" outbox", "rows", n)
		}
	}
}

// backoff is the wait after the n-th consecutive failure (n ≥ 1): the
// capped exponential delay, jittered to between half and all of it.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.sch.BackoffMin
	for i := 1; i < n && delay < d.sch.BackoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, d.sch.BackoffMax)
	half := delay / 2
	return half + rand.N(delay-half+1)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
