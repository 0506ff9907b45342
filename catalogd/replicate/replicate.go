package replicate

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"riff/catalogd/outbox"
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

// LeaseName names the dispatcher's lease.
const LeaseName = "replication-dispatcher"

// Target is a region that receives copies.
type Target struct {
	Name  string
	Store blob.Store
}

// Config configures a Dispatcher. Source and Targets are required; zero
// durations and counts take the defaults shown, and those of
// outbox.Schedule (polling, backoff, retention of applied rows, the lease
// LeaseName) except LagThreshold, whose default here is 10m.
type Config struct {
	outbox.Schedule
	// Source is the home region's store, where versions are published.
	Source blob.Store
	// Targets are the other regions.
	Targets []Target
	// Batch is how many rows are read at once. Default 100.
	Batch int
	// OpTimeout bounds one row's work (all its objects). Default 10m.
	OpTimeout time.Duration
}

func (c *Config) defaults() {
	if c.OpTimeout <= 0 {
		c.OpTimeout = 10 * time.Minute
	}
	if c.LagThreshold <= 0 {
		c.LagThreshold = 10 * time.Minute
	}
	if c.Batch <= 0 {
		c.Batch = 100
	}
}

// Dispatcher replicates the outbox to every target region (see the
// package doc and package outbox). New has no side effects beyond
// registering metrics; Run works until its context ends or Close is
// called; Close is idempotent. Kick, Ready and Detail are safe for
// concurrent use at any time.
type Dispatcher struct {
	cfg     Config
	st      Store
	log     *slog.Logger
	out     *outbox.Dispatcher
	regions map[string]*region
}

// region is one target's store and counters.
type region struct {
	store                                blob.Store
	copies, deletes, objects, bytes      *metrics.Counter
	srcErrs, dstErrs, verifyErrs, dbErrs *metrics.Counter
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
	cfg.defaults()
	d := &Dispatcher{cfg: cfg, st: st, log: o.Logger.With("part", "replicate"), regions: map[string]*region{}}
	set := o.Metrics
	var names []string
	for _, t := range cfg.Targets {
		if t.Name == "" || t.Store == nil {
			return nil, errors.New("replicate: a target needs a name and a store")
		}
		counter := func(format string) *metrics.Counter { return set.GetOrCreateCounter(fmt.Sprintf(format, t.Name)) }
		d.regions[t.Name] = &region{
			store:      t.Store,
			copies:     counter(`riff_replication_applied_total{region=%q,op="copy"}`),
			deletes:    counter(`riff_replication_applied_total{region=%q,op="delete"}`),
			objects:    counter(`riff_replication_objects_total{region=%q}`),
			bytes:      counter(`riff_replication_bytes_total{region=%q}`),
			srcErrs:    counter(`riff_replication_failures_total{region=%q,kind="source"}`),
			dstErrs:    counter(`riff_replication_failures_total{region=%q,kind="target"}`),
			verifyErrs: counter(`riff_replication_failures_total{region=%q,kind="verify"}`),
			dbErrs:     counter(`riff_replication_failures_total{region=%q,kind="store"}`),
		}
		names = append(names, t.Name)
	}
	out, err := outbox.New(o, d.log, regionRows{d}, names, cfg.Schedule,
		outbox.Names{Work: "replication", Lease: LeaseName, Target: "region", Rows: "replications"},
		outbox.Metrics{
			TargetPending: `riff_replication_pending{region=%q}`, TargetLag: `riff_replication_lag_seconds{region=%q}`,
			Pending: `riff_replication_outbox_pending`, Oldest: `riff_replication_oldest_unapplied_seconds`,
			Pruned: `riff_replication_pruned_total`, Dispatcher: `riff_replication_dispatcher`,
		})
	if err != nil {
		return nil, fmt.Errorf("replicate: %w", err)
	}
	d.out = out
	return d, nil
}

// Regions returns the target regions' names.
func (d *Dispatcher) Regions() []string { return d.out.Names() }

// Run replicates until ctx ends or Close is called, then returns nil. It
// returns an error if the Dispatcher is already running.
func (d *Dispatcher) Run(ctx context.Context) error { return d.out.Run(ctx) }

// Close stops Run and waits for it to return. It is idempotent.
func (d *Dispatcher) Close() error { return d.out.Close() }

// Kick wakes every idle region to look for new rows now. It never blocks
// and does nothing on a nil Dispatcher.
func (d *Dispatcher) Kick() {
	if d != nil {
		d.out.Kick()
	}
}

// Ready reports an error naming every region whose oldest unapplied row
// is older than Config.LagThreshold.
func (d *Dispatcher) Ready(ctx context.Context) error { return d.out.Ready(ctx) }

// Detail is the replication backlog for /readyz's detail.
func (d *Dispatcher) Detail() any {
	type regionDetail struct {
		Pending    int     `json:"pending"`
		OldestSecs float64 `json:"oldest_age_seconds"`
	}
	out := struct {
		Dispatcher bool                    `json:"dispatcher"`
		Regions    map[string]regionDetail `json:"regions"`
	}{Dispatcher: d.out.Leader(), Regions: map[string]regionDetail{}}
	for _, t := range d.out.Targets() {
		n, _ := t.Backlog()
		out.Regions[t.Name] = regionDetail{Pending: n, OldestSecs: d.out.Lag(t).Seconds()}
	}
	return out
}

// regionRows is the replication outbox as package outbox delivers it.
type regionRows struct{ d *Dispatcher }

func (rr regionRows) Cursor(ctx context.Context, region string) (int64, error) {
	c, err := rr.d.st.ReplicationCursor(ctx, region)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errDB, err)
	}
	return c, nil
}

func (rr regionRows) Prune(ctx context.Context, regions []string, before time.Time) (int64, error) {
	return rr.d.st.PruneReplications(ctx, regions, before)
}

// Deliver applies the next batch after cursor to region t, row by row,
// each applied and recorded before the next.
func (rr regionRows) Deliver(ctx context.Context, t *outbox.Target, cursor int64) (int64, error) {
	d, r := rr.d, rr.d.regions[t.Name]
	if n, oldest, err := d.st.ReplicationBacklog(ctx, cursor); err == nil {
		t.SetBacklog(n, oldest)
	}
	batch, err := d.st.PendingReplications(ctx, cursor, d.cfg.Batch)
	if err != nil {
		return cursor, fmt.Errorf("%w: %w", errDB, err)
	}
	for _, e := range batch {
		if err := d.applyRow(ctx, t.Name, r, e); err != nil {
			return cursor, err
		}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		err := d.st.AckReplication(actx, t.Name, e)
		cancel()
		if err != nil {
			return cursor, fmt.Errorf("%w: %w", errDB, err)
		}
		if e.Op == store.ReplicateCopy {
			r.copies.Inc()
		} else {
			r.deletes.Inc()
		}
		cursor = e.ID
		d.log.Debug("replicated", "region", t.Name, "op", e.Op, "prefix", e.Prefix, "id", e.ID)
	}
	return cursor, nil
}

// Failed counts and logs a failed attempt by its kind.
func (rr regionRows) Failed(t *outbox.Target, err error, failures int) {
	r := rr.d.regions[t.Name]
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
	rr.d.log.Warn("replication failed, will retry", "region", t.Name, "err", err, "failures", failures)
}

// Failure kinds.
var (
	errSource = errors.New("source store")
	errTarget = errors.New("target store")
	errVerify = errors.New("copy does not match")
	errDB     = errors.New("database")
)

// applyRow does one row's work in region name's store.
func (d *Dispatcher) applyRow(ctx context.Context, name string, r *region, e store.ReplicationEntry) error {
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
			d.log.Warn("replication: nothing to copy (collected already?)", "region", name, "prefix", e.Prefix)
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
