package replicate

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/obs"
)

// Store is what a Dispatcher needs from the catalog database; *store.Store
// is one.
type Store interface {
	PendingReplications(ctx context.Context, after int64, limit int) ([]store.ReplicationEntry, error)
	ReplicationBacklog(ctx context.Context, after int64) (int, time.Time, error)
	ReplicationCursor(ctx context.Context, region string) (int64, error)
	AckReplication(ctx context.Context, region string, e store.ReplicationEntry) error
	PruneReplications(ctx context.Context, regions []string, before time.Time) (int64, error)
}

// Lease is a lease held by one holder at a time; *store.Store is one.
type Lease interface {
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, holder string) error
}

// LeaseName names the dispatcher's lease.
const LeaseName = "replication-dispatcher"

// Target is a region that receives copies.
type Target struct {
	Name  string
	Store blob.Store
}

// Config configures a Dispatcher. Source and Targets are required; zero
// durations and counts take the defaults shown.
type Config struct {
	// Source is the home region's store, where versions are published.
	Source blob.Store
	// Targets are the other regions.
	Targets []Target
	// PollInterval is how often an idle region looks for new rows (Kick
	// wakes them at once). Default 1s.
	PollInterval time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed row: it
	// doubles per consecutive failure and is jittered to between half and
	// all of it. Defaults 250ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Batch is how many rows are read at once. Default 100.
	Batch int
	// OpTimeout bounds one row's work (all its objects). Default 10m.
	OpTimeout time.Duration
	// LagThreshold: Ready fails while a region's oldest unapplied row is
	// older than this. Default 10m.
	LagThreshold time.Duration
	// Retain keeps applied rows this long; PruneInterval is how often they
	// are deleted. Defaults 1h and 1m.
	Retain, PruneInterval time.Duration
	// Now is the clock for ages. Default time.Now.
	Now func() time.Time
	// Lease, when set, makes the Dispatcher work only while it holds the
	// lease LeaseName (several catalogd on one PostgreSQL database).
	Lease Lease
	// LeaseTTL is the lease's term, renewed every third of it. Default 10s.
	LeaseTTL time.Duration
	// Holder names this instance in the lease. Default: random.
	Holder string
}

func (c *Config) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.PollInterval, time.Second)
	def(&c.BackoffMin, 250*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.OpTimeout, 10*time.Minute)
	def(&c.LagThreshold, 10*time.Minute)
	def(&c.Retain, time.Hour)
	def(&c.PruneInterval, time.Minute)
	def(&c.LeaseTTL, 10*time.Second)
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.Batch <= 0 {
		c.Batch = 100
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Holder == "" {
		c.Holder = fmt.Sprintf("catalogd-%016x", rand.Uint64())
	}
}

// Dispatcher replicates the outbox to every target region (see the
// package doc). New has no side effects beyond registering metrics; Run
// works until its context ends or Close is called; Close is idempotent.
// Kick, Ready and Detail are safe for concurrent use at any time.
type Dispatcher struct {
	cfg     Config
	st      Store
	log     *slog.Logger
	regions []*region
	names   []string

	pruned *metrics.Counter
	leader atomic.Bool

	mu      sync.Mutex
	closed  bool
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// region is one target's state.
type region struct {
	name  string
	store blob.Store
	kick  chan struct{}

	copies, deletes, objects, bytes      *metrics.Counter
	srcErrs, dstErrs, verifyErrs, dbErrs *metrics.Counter

	mu      sync.Mutex
	pending int
	oldest  time.Time
	lastErr string
}

// New returns a Dispatcher for cfg over st, logging to and registering its
// metrics on o.
func New(o *obs.Obs, st Store, cfg Config) (*Dispatcher, error) {
	if o == nil || st == nil {
		return nil, errors.New("replicate: New needs obs and a store")
	}
	if cfg.Source == nil {
		return nil, errors.New("replicate: no source store")
	}
	if len(cfg.Targets) == 0 {
		return nil, errors.New("replicate: no target regions")
	}
	cfg.defaults()
	d := &Dispatcher{cfg: cfg, st: st, log: o.Logger.With("part", "replicate"), done: make(chan struct{})}
	set := o.Metrics
	for _, t := range cfg.Targets {
		if t.Name == "" || t.Store == nil {
			return nil, errors.New("replicate: a target needs a name and a store")
		}
		if slices.Contains(d.names, t.Name) {
			return nil, fmt.Errorf("replicate: region %s listed twice", t.Name)
		}
		r := &region{name: t.Name, store: t.Store, kick: make(chan struct{}, 1)}
		r.copies = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_applied_total{region=%q,op="copy"}`, t.Name))
		r.deletes = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_applied_total{region=%q,op="delete"}`, t.Name))
		r.objects = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_objects_total{region=%q}`, t.Name))
		r.bytes = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_bytes_total{region=%q}`, t.Name))
		r.srcErrs = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_failures_total{region=%q,kind="source"}`, t.Name))
		r.dstErrs = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_failures_total{region=%q,kind="target"}`, t.Name))
		r.verifyErrs = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_failures_total{region=%q,kind="verify"}`, t.Name))
		r.dbErrs = set.GetOrCreateCounter(fmt.Sprintf(`riff_replication_failures_total{region=%q,kind="store"}`, t.Name))
		set.GetOrCreateGauge(fmt.Sprintf(`riff_replication_pending{region=%q}`, t.Name), func() float64 {
			n, _ := r.backlog()
			return float64(n)
		})
		set.GetOrCreateGauge(fmt.Sprintf(`riff_replication_lag_seconds{region=%q}`, t.Name), func() float64 {
			return d.lag(r).Seconds()
		})
		d.regions = append(d.regions, r)
		d.names = append(d.names, t.Name)
	}
	set.GetOrCreateGauge(`riff_replication_outbox_pending`, func() float64 {
		n := 0
		for _, r := range d.regions {
			p, _ := r.backlog()
			n = max(n, p)
		}
		return float64(n)
	})
	set.GetOrCreateGauge(`riff_replication_oldest_unapplied_seconds`, func() float64 {
		var lag time.Duration
		for _, r := range d.regions {
			lag = max(lag, d.lag(r))
		}
		return lag.Seconds()
	})
	d.pruned = set.GetOrCreateCounter(`riff_replication_pruned_total`)
	set.GetOrCreateGauge(`riff_replication_dispatcher`, func() float64 {
		if d.leader.Load() {
			return 1
		}
		return 0
	})
	return d, nil
}

// Regions returns the target regions' names.
func (d *Dispatcher) Regions() []string { return slices.Clone(d.names) }

// Run replicates until ctx ends or Close is called, then returns nil. It
// returns an error if the Dispatcher is already running.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("replicate: dispatcher already running")
	}
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.running = true
	ctx, d.cancel = context.WithCancel(ctx)
	d.mu.Unlock()
	defer close(d.done)
	defer d.cancel()
	if d.cfg.Lease == nil {
		d.leader.Store(true)
		d.log.Info("replication started", "regions", d.names)
		d.applyAll(ctx)
		d.leader.Store(false)
		return nil
	}
	d.log.Info("replication started; working while this instance holds the lease", "regions", d.names, "holder", d.cfg.Holder)
	d.lead(ctx)
	return nil
}

// Close stops Run and waits for it to return. It is idempotent.
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

// Kick wakes every idle region to look for new rows now. It never blocks
// and does nothing on a nil Dispatcher.
func (d *Dispatcher) Kick() {
	if d == nil {
		return
	}
	for _, r := range d.regions {
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}
}

// Ready reports an error naming every region whose oldest unapplied row
// is older than Config.LagThreshold.
func (d *Dispatcher) Ready(context.Context) error {
	var lagging []string
	for _, r := range d.regions {
		lag := d.lag(r)
		if lag <= d.cfg.LagThreshold {
			continue
		}
		r.mu.Lock()
		msg := fmt.Sprintf("region %s has %d replications pending, the oldest %s old", r.name, r.pending, lag.Round(time.Millisecond))
		if r.lastErr != "" {
			msg += " (last error: " + r.lastErr + ")"
		}
		r.mu.Unlock()
		lagging = append(lagging, msg)
	}
	if len(lagging) > 0 {
		return errors.New(strings.Join(lagging, "; "))
	}
	return nil
}

// Detail is the replication backlog for /readyz's detail.
func (d *Dispatcher) Detail() any {
	type regionDetail struct {
		Pending    int     `json:"pending"`
		OldestSecs float64 `json:"oldest_age_seconds"`
	}
	out := struct {
		Dispatcher bool                    `json:"dispatcher"`
		Regions    map[string]regionDetail `json:"regions"`
	}{Dispatcher: d.leader.Load(), Regions: map[string]regionDetail{}}
	for _, r := range d.regions {
		n, _ := r.backlog()
		out.Regions[r.name] = regionDetail{Pending: n, OldestSecs: d.lag(r).Seconds()}
	}
	return out
}

func (d *Dispatcher) lag(r *region) time.Duration {
	_, oldest := r.backlog()
	if oldest.IsZero() {
		return 0
	}
	return max(0, d.cfg.Now().Sub(oldest))
}

func (r *region) backlog() (int, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending, r.oldest
}

func (r *region) setBacklog(n int, oldest time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending, r.oldest = n, oldest
}

func (r *region) setErr(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.lastErr = ""
	} else {
		r.lastErr = err.Error()
	}
}

// applyAll runs every region's loop and the pruning until ctx ends.
func (d *Dispatcher) applyAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, r := range d.regions {
		wg.Go(func() { d.apply(ctx, r) })
	}
	wg.Go(func() { d.prune(ctx) })
	wg.Wait()
}

// lead campaigns for the lease and replicates while it holds it; see
// purge.Dispatcher's lead, which this follows: it stops when the lease is
// another's or a whole term passed without a renewal, and releases the
// lease on a clean stop.
func (d *Dispatcher) lead(ctx context.Context) {
	ttl, every := d.cfg.LeaseTTL, d.cfg.LeaseTTL/3
	acquire := func() (bool, time.Time, error) {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, every)
		defer cancel()
		ok, err := d.cfg.Lease.AcquireLease(actx, LeaseName, d.cfg.Holder, ttl)
		return ok, start, err
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for ctx.Err() == nil {
		ok, start, err := acquire()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("replication lease", "err", err)
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
		d.log.Info("replication lease taken: this instance replicates", "holder", d.cfg.Holder)
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.applyAll(lctx)
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
				d.log.Warn("renewing replication lease", "err", err)
			}
		}
		stop()
		<-done
		d.leader.Store(false)
		for _, r := range d.regions {
			r.setBacklog(0, time.Time{})
			r.setErr(nil)
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			if err := d.cfg.Lease.ReleaseLease(rctx, LeaseName, d.cfg.Holder); err != nil {
				d.log.Warn("releasing replication lease", "err", err)
			}
			cancel()
			return
		}
		d.log.Warn("replication: stopped", "reason", why)
	}
}

// Failure kinds.
var (
	errSource = errors.New("source store")
	errTarget = errors.New("target store")
	errVerify = errors.New("copy does not match")
	errDB     = errors.New("database")
)

// apply is r's loop: apply every row after its cursor, in order.
func (d *Dispatcher) apply(ctx context.Context, r *region) {
	cursor := int64(-1)
	failures := 0
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		failures++
		r.setErr(err)
		switch {
		case errors.Is(err, errVerify):
			r.verifyErrs.Inc()
		case errors.Is(err, errSource):
			r.srcErrs.Inc()
		case errors.Is(err, errDB):
			r.dbErrs.Inc()
		default:
			r.dstErrs.Inc()
		}
		d.log.Warn("replication failed, will retry", "region", r.name, "err", err, "failures", failures)
		sleep(ctx, d.backoff(failures))
	}
	for ctx.Err() == nil {
		if cursor < 0 {
			c, err := d.st.ReplicationCursor(ctx, r.name)
			if err != nil {
				fail(fmt.Errorf("%w: %w", errDB, err))
				continue
			}
			cursor = c
		}
		if n, oldest, err := d.st.ReplicationBacklog(ctx, cursor); err == nil {
			r.setBacklog(n, oldest)
		}
		batch, err := d.st.PendingReplications(ctx, cursor, d.cfg.Batch)
		if err != nil {
			fail(fmt.Errorf("%w: %w", errDB, err))
			continue
		}
		if len(batch) == 0 {
			r.setBacklog(0, time.Time{})
			select {
			case <-ctx.Done():
			case <-r.kick:
			case <-time.After(d.cfg.PollInterval):
			}
			continue
		}
		for _, e := range batch {
			if err := d.applyRow(ctx, r, e); err != nil {
				fail(err)
				break
			}
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			err := d.st.AckReplication(actx, r.name, e)
			cancel()
			if err != nil {
				fail(fmt.Errorf("%w: %w", errDB, err))
				break
			}
			if e.Op == store.ReplicateCopy {
				r.copies.Inc()
			} else {
				r.deletes.Inc()
			}
			if failures > 0 {
				d.log.Info("replication to region works again", "region", r.name, "after_failures", failures)
			}
			failures = 0
			r.setErr(nil)
			cursor = e.ID
			d.log.Debug("replicated", "region", r.name, "op", e.Op, "prefix", e.Prefix, "id", e.ID)
		}
	}
}

// applyRow does one row's work in r's store.
func (d *Dispatcher) applyRow(ctx context.Context, r *region, e store.ReplicationEntry) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.OpTimeout)
	defer cancel()
	switch e.Op {
	case store.ReplicateCopy:
		var infos []blob.Info
		for info, err := range d.cfg.Source.List(ctx, e.Prefix) {
			if err != nil {
				return fmt.Errorf("%w: list %s: %w", errSource, e.Prefix, err)
			}
			infos = append(infos, info)
		}
		if len(infos) == 0 {
			// Collected at home before it got here: the delete row
			// that follows settles it.
			d.log.Warn("replication: nothing to copy (collected already?)", "region", r.name, "prefix", e.Prefix)
		}
		for _, info := range infos {
			n, err := CopyObject(ctx, d.cfg.Source, r.store, info)
			if err != nil {
				return err
			}
			if n > 0 {
				r.objects.Inc()
				r.bytes.Add(int(n))
			}
		}
		return nil
	case store.ReplicateDelete:
		var keys []string
		for info, err := range r.store.List(ctx, e.Prefix) {
			if err != nil {
				return fmt.Errorf("%w: list %s: %w", errTarget, e.Prefix, err)
			}
			keys = append(keys, info.Key)
		}
		for _, k := range keys {
			if err := r.store.Delete(ctx, k); err != nil && !errors.Is(err, blob.ErrNotFound) {
				return fmt.Errorf("%w: delete %s: %w", errTarget, k, err)
			}
		}
		return nil
	}
	d.log.Error("replication: unknown op, skipped", "op", e.Op, "id", e.ID)
	return nil
}

// serverCopier is a store that can copy an object from another store of
// the same service without the bytes passing through us (blob.S3).
type serverCopier interface {
	CopyFrom(ctx context.Context, src blob.Store, key string) (blob.Info, bool, error)
}

// CopyObject makes dst hold the object src holds under info.Key, byte for
// byte, and returns how many bytes it wrote (0 when dst had it already).
// It streams (or copies server-side when dst can) and then reads dst's
// copy back: its size and SHA-256 must be src's, or the error wraps
// errVerify. Errors say which side failed.
func CopyObject(ctx context.Context, src, dst blob.Store, info blob.Info) (int64, error) {
	key := info.Key
	if have, err := dst.Stat(ctx, key); err == nil && have.Size == info.Size {
		want, err := sum(ctx, src, key)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errSource, err)
		}
		if got, err := sum(ctx, dst, key); err == nil && got.size == want.size && string(got.sha) == string(want.sha) {
			return 0, nil
		}
	}
	var want digest
	if sc, ok := dst.(serverCopier); ok {
		if _, copied, err := sc.CopyFrom(ctx, src, key); err != nil {
			return 0, fmt.Errorf("%w: server-side copy %s: %w", errTarget, key, err)
		} else if copied {
			if want, err = sum(ctx, src, key); err != nil {
				return 0, fmt.Errorf("%w: %w", errSource, err)
			}
		}
	}
	if want.sha == nil {
		rc, srcInfo, err := src.Get(ctx, key, nil)
		if err != nil {
			return 0, fmt.Errorf("%w: get %s: %w", errSource, key, err)
		}
		h := &hashingReader{r: rc, h: sha256.New()}
		_, err = dst.Put(ctx, key, h, blob.PutOptions{ContentType: srcInfo.ContentType})
		rc.Close()
		if h.err != nil {
			return 0, fmt.Errorf("%w: read %s: %w", errSource, key, h.err)
		}
		if err != nil {
			return 0, fmt.Errorf("%w: put %s: %w", errTarget, key, err)
		}
		want = digest{size: h.n, sha: h.h.Sum(nil)}
		if want.size != srcInfo.Size {
			return 0, fmt.Errorf("%w: %s: read %d bytes of a %d-byte object", errVerify, key, want.size, srcInfo.Size)
		}
	}
	got, err := sum(ctx, dst, key)
	if err != nil {
		return 0, fmt.Errorf("%w: read back %s: %w", errTarget, key, err)
	}
	if got.size != want.size || string(got.sha) != string(want.sha) {
		return 0, fmt.Errorf("%w: %s: %d bytes sha256 %x in the target, %d bytes sha256 %x in the source", errVerify, key,
			got.size, got.sha, want.size, want.sha)
	}
	return got.size, nil
}

// digest is an object's size and SHA-256.
type digest struct {
	size int64
	sha  []byte
}

// sum reads key from s whole and returns its digest.
func sum(ctx context.Context, s blob.Store, key string) (digest, error) {
	rc, _, err := s.Get(ctx, key, nil)
	if err != nil {
		return digest{}, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return digest{}, err
	}
	return digest{size: n, sha: h.Sum(nil)}, nil
}

// hashingReader hashes and counts what is read through it and keeps the
// read error (a Put reports its own failure, not which side caused it).
type hashingReader struct {
	r   io.Reader
	h   hash.Hash
	n   int64
	err error
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	if err != nil && err != io.EOF {
		h.err = err
	}
	return n, err
}

// prune deletes applied rows every PruneInterval.
func (d *Dispatcher) prune(ctx context.Context) {
	t := time.NewTicker(d.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := d.st.PruneReplications(ctx, d.names, d.cfg.Now().Add(-d.cfg.Retain))
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("pruning replication outbox", "err", err)
			}
			continue
		}
		if n > 0 {
			d.pruned.Add(int(n))
		}
	}
}

func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.cfg.BackoffMin
	for i := 1; i < n && delay < d.cfg.BackoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, d.cfg.BackoffMax)
	half := delay / 2
	return half + rand.N(delay-half+1)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
