package purge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel/attribute"

	"riff/catalogd/store"
	"riff/internal/blobkey"
	"riff/internal/obs"
	"riff/internal/playtoken"
)

// Store is what a Dispatcher needs from the catalog database; *store.Store
// is one.
type Store interface {
	// PendingPurges returns up to limit outbox rows with ids above after,
	// in id order.
	PendingPurges(ctx context.Context, after int64, limit int) ([]store.PurgeEntry, error)
	// PurgeBacklog counts the rows with ids above after and returns the
	// creation time of the oldest.
	PurgeBacklog(ctx context.Context, after int64) (int, time.Time, error)
	// PurgeCursor returns the highest id edge acknowledged (0: none).
	PurgeCursor(ctx context.Context, edge string) (int64, error)
	// AckPurges moves edge's cursor forward to id.
	AckPurges(ctx context.Context, edge string, id int64) error
	// PrunePurges deletes rows every one of edges acknowledged that were
	// created before before.
	PrunePurges(ctx context.Context, edges []string, before time.Time) (int64, error)
}

// Lease is a lease held by one holder at a time; *store.Store is one (see
// store.AcquireLease).
type Lease interface {
	// AcquireLease takes or renews lease name for holder for ttl and
	// reports whether holder holds it now.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease gives lease name up if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// LeaseName names the dispatcher's lease.
const LeaseName = "purge-dispatcher"

// Signer mints purge tokens; *playtoken.Signer is one.
type Signer interface {
	Mint(c playtoken.Claims, ttl time.Duration) (string, error)
}

// Config configures a Dispatcher. Edges and Signer are required; zero
// durations and counts take the defaults shown.
type Config struct {
	// Edges are the edges' admin base URLs, http(s)://host:port (the
	// listener that serves POST /purge). An edge's cursor is stored under
	// its URL as written here (a trailing slash removed).
	Edges []string
	// Signer mints the purge tokens the edges verify.
	Signer Signer
	// Client sends the requests. Default: a client of its own with a 10s
	// timeout, whose idle connections Close closes.
	Client *http.Client
	// PollInterval is how often an idle edge looks for new rows (Kick wakes
	// them at once). Default 1s.
	PollInterval time.Duration
	// BackoffMin and BackoffMax bound the wait after a failed attempt: it
	// starts at BackoffMin, doubles with each consecutive failure up to
	// BackoffMax, and is jittered to between half and all of that.
	// Defaults 250ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// Batch caps the prefixes in one request. Default and maximum 1000
	// (what an edge accepts).
	Batch int
	// TokenTTL is the lifetime of the token minted for each request.
	// Default 1m.
	TokenTTL time.Duration
	// LagThreshold: Ready fails while an edge's oldest unacknowledged purge
	// is older than this. Default 1m.
	LagThreshold time.Duration
	// Retain keeps acknowledged rows this long (for new edges, see the
	// package doc). Default 1h.
	Retain time.Duration
	// PruneInterval is how often acknowledged rows are deleted. Default 1m.
	PruneInterval time.Duration
	// Now is the clock for ages. Default time.Now.
	Now func() time.Time
	// Lease, when set, makes the Dispatcher send only while it holds
	// the lease LeaseName, so that of several catalogd instances on one
	// database exactly one sends the outbox (see the package doc). Nil:
	// it always sends (one instance, SQLite).
	Lease Lease
	// LeaseTTL is the lease's term, renewed every third of it: the
	// longest a dead holder delays the outbox. Default 10s.
	LeaseTTL time.Duration
	// Holder names this instance in the lease. Default: random.
	Holder string
}

// maxBatch is the most prefixes an edge takes in one purge request.
const maxBatch = 1000

func (c *Config) defaults() {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.PollInterval, time.Second)
	def(&c.BackoffMin, 250*time.Millisecond)
	def(&c.BackoffMax, 30*time.Second)
	def(&c.TokenTTL, time.Minute)
	def(&c.LagThreshold, time.Minute)
	def(&c.Retain, time.Hour)
	def(&c.PruneInterval, time.Minute)
	def(&c.LeaseTTL, 10*time.Second)
	if c.Holder == "" {
		c.Holder = fmt.Sprintf("catalogd-%016x", rand.Uint64())
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffMin)
	if c.Batch <= 0 || c.Batch > maxBatch {
		c.Batch = maxBatch
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Dispatcher sends the purge outbox to every configured edge (see the
// package doc). New has no side effects beyond registering metrics; Run
// does the work until its context ends or Close is called; Close is
// idempotent and works whether or not Run was called. Kick and Ready are
// safe for concurrent use at any time.
type Dispatcher struct {
	cfg       Config
	st        Store
	obs       *obs.Obs
	log       *slog.Logger
	ownClient bool
	edges     []*edgeState
	names     []string

	pruned *metrics.Counter
	leader atomic.Bool // sending the outbox now

	mu      sync.Mutex
	closed  bool
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// edgeState is one edge's delivery state.
type edgeState struct {
	url  string
	kick chan struct{} // capacity 1: a pending wake-up

	delivered                       *metrics.Counter
	unavailable, refused, storeErrs *metrics.Counter

	mu      sync.Mutex
	pending int       // rows after the cursor
	oldest  time.Time // creation of the first of them; zero when none
	lastErr string    // the last failure, for Ready's detail
}

// New returns a Dispatcher for cfg over st, logging to and registering
// its metrics on o.
func New(o *obs.Obs, st Store, cfg Config) (*Dispatcher, error) {
	if o == nil || st == nil {
		return nil, errors.New("purge: New needs obs and a store")
	}
	if cfg.Signer == nil {
		return nil, errors.New("purge: no signer for purge tokens")
	}
	if len(cfg.Edges) == 0 {
		return nil, errors.New("purge: no edges")
	}
	cfg.defaults()
	d := &Dispatcher{cfg: cfg, st: st, obs: o, log: o.Logger.With("part", "purge"), done: make(chan struct{})}
	if d.cfg.Client == nil {
		d.ownClient = true
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.Proxy = nil // admin listeners are on a private network: no HTTP_PROXY detours
		tr.MaxIdleConnsPerHost = 2
		d.cfg.Client = &http.Client{
			Timeout: 10 * time.Second, Transport: tr,
			// An edge never redirects a purge; a redirect is an answer
			// to report, not to follow (a POST would turn into a GET).
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	set := o.Metrics
	for _, raw := range cfg.Edges {
		u := strings.TrimSuffix(strings.TrimSpace(raw), "/")
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil ||
			pu.RawQuery != "" || pu.Fragment != "" {
			return nil, fmt.Errorf("purge: edge %q: want http(s)://host:port of its admin listener, without credentials", raw)
		}
		if slices.Contains(d.names, u) {
			return nil, fmt.Errorf("purge: edge %s listed twice", u)
		}
		e := &edgeState{url: u, kick: make(chan struct{}, 1)}
		e.delivered = set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, u))
		e.unavailable = set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="unavailable"}`, u))
		e.refused = set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="refused"}`, u))
		e.storeErrs = set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="store"}`, u))
		set.GetOrCreateGauge(fmt.Sprintf(`riff_purge_edge_pending{edge=%q}`, u), func() float64 {
			n, _ := e.backlog()
			return float64(n)
		})
		set.GetOrCreateGauge(fmt.Sprintf(`riff_purge_edge_lag_seconds{edge=%q}`, u), func() float64 {
			return d.lag(e).Seconds()
		})
		d.edges = append(d.edges, e)
		d.names = append(d.names, u)
	}
	set.GetOrCreateGauge(`riff_purge_outbox_pending`, func() float64 {
		n := 0
		for _, e := range d.edges {
			p, _ := e.backlog()
			n = max(n, p)
		}
		return float64(n)
	})
	set.GetOrCreateGauge(`riff_purge_oldest_undelivered_seconds`, func() float64 {
		var lag time.Duration
		for _, e := range d.edges {
			lag = max(lag, d.lag(e))
		}
		return lag.Seconds()
	})
	d.pruned = set.GetOrCreateCounter(`riff_purge_pruned_total`)
	set.GetOrCreateGauge(`riff_purge_dispatcher`, func() float64 {
		if d.leader.Load() {
			return 1
		}
		return 0
	})
	return d, nil
}

// Edges returns the edges' admin URLs as the Dispatcher names them.
func (d *Dispatcher) Edges() []string { return slices.Clone(d.names) }

// Run delivers purges until ctx ends or Close is called, then returns nil
// (at once if Close came first). With Config.Lease it delivers only while
// it holds the lease, and releases it on the way out. It returns an error
// if the Dispatcher is already running.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return errors.New("purge: dispatcher already running")
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
		d.log.Info("purge fan-out started", "edges", d.names)
		d.deliverAll(ctx)
		d.leader.Store(false)
	} else {
		d.log.Info("purge fan-out started; delivering while this instance holds the dispatcher lease", "edges", d.names, "holder", d.cfg.Holder)
		d.lead(ctx)
	}
	if d.ownClient {
		d.cfg.Client.CloseIdleConnections()
	}
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
	if d.ownClient {
		d.cfg.Client.CloseIdleConnections()
	}
	return nil
}

// Kick wakes every idle edge to look for new rows now, instead of at its
// next poll. Call it after committing a change that enqueued purges. An
// edge waiting out a backoff keeps waiting. Kick never blocks, and does
// nothing on a nil Dispatcher (no fan-out configured).
func (d *Dispatcher) Kick() {
	if d == nil {
		return
	}
	for _, e := range d.edges {
		select {
		case e.kick <- struct{}{}:
		default:
		}
	}
}

// Ready reports an error naming every edge whose oldest unacknowledged
// purge is older than Config.LagThreshold; use it as a readiness check.
func (d *Dispatcher) Ready(context.Context) error {
	var lagging []string
	for _, e := range d.edges {
		lag := d.lag(e)
		if lag <= d.cfg.LagThreshold {
			continue
		}
		e.mu.Lock()
		msg := fmt.Sprintf("edge %s has %d purges pending, the oldest %s old", e.url, e.pending, lag.Round(time.Millisecond))
		if e.lastErr != "" {
			msg += " (last error: " + e.lastErr + ")"
		}
		e.mu.Unlock()
		lagging = append(lagging, msg)
	}
	if len(lagging) > 0 {
		return errors.New(strings.Join(lagging, "; "))
	}
	return nil
}

// Backlog is the purge backlog as Detail reports it: no edge addresses,
// since /readyz may be public.
type Backlog struct {
	// Pending is the largest number of purges any edge has yet to
	// acknowledge; OldestSecs the age of the oldest of them.
	Pending    int     `json:"pending"`
	OldestSecs float64 `json:"oldest_age_seconds"`
	Edges      int     `json:"edges"`
	// Lagging counts edges whose oldest purge is past the lag threshold.
	Lagging int `json:"edges_lagging"`
	// Dispatcher: this instance is the one sending the outbox.
	Dispatcher bool `json:"dispatcher"`
}

// Detail returns the Backlog, for the /readyz detail (see obs.AddDetail).
// It is safe for concurrent use.
func (d *Dispatcher) Detail() any {
	b := Backlog{Edges: len(d.edges), Dispatcher: d.leader.Load()}
	for _, e := range d.edges {
		n, _ := e.backlog()
		lag := d.lag(e)
		b.Pending = max(b.Pending, n)
		b.OldestSecs = max(b.OldestSecs, lag.Seconds())
		if d.cfg.LagThreshold > 0 && lag > d.cfg.LagThreshold {
			b.Lagging++
		}
	}
	return b
}

// lag is the age of e's oldest unacknowledged row, 0 when none.
func (d *Dispatcher) lag(e *edgeState) time.Duration {
	_, oldest := e.backlog()
	if oldest.IsZero() {
		return 0
	}
	return max(0, d.cfg.Now().Sub(oldest))
}

func (e *edgeState) backlog() (int, time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pending, e.oldest
}

func (e *edgeState) setBacklog(n int, oldest time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pending, e.oldest = n, oldest
}

func (e *edgeState) setErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err == nil {
		e.lastErr = ""
	} else {
		e.lastErr = err.Error()
	}
}

// deliverAll runs every edge's delivery loop and the pruning until ctx
// ends.
func (d *Dispatcher) deliverAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, e := range d.edges {
		wg.Go(func() { d.deliver(ctx, e) })
	}
	wg.Go(func() { d.prune(ctx) })
	wg.Wait()
}

// lead campaigns for the dispatcher lease until ctx ends: every
// LeaseTTL/3 it tries to take it; once it holds it, it delivers (see
// deliverAll) and renews at the same pace. It stops delivering when the
// lease is lost (another holder has it) or when a whole term passed
// without a successful renewal (the database unreachable: the lease may
// have expired and been taken over), counted on the local clock from the
// start of the last successful renewal, which the database's expiry can
// only follow. On a clean stop (ctx ends) it releases the lease, so
// another instance takes over at once; a holder that dies without
// releasing is replaced once its term ends.
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
			d.log.Warn("purge dispatcher lease", "err", err)
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
		d.log.Info("purge dispatcher lease taken: this instance sends the outbox", "holder", d.cfg.Holder)
		lctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.deliverAll(lctx)
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
				d.log.Warn("renewing purge dispatcher lease", "err", err, "left", time.Until(deadline).Round(time.Millisecond))
			}
		}
		stop()
		<-done
		d.leader.Store(false)
		for _, e := range d.edges { // the next holder reports the backlog
			e.setBacklog(0, time.Time{})
			e.setErr(nil)
		}
		if ctx.Err() != nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			if err := d.cfg.Lease.ReleaseLease(rctx, LeaseName, d.cfg.Holder); err != nil {
				d.log.Warn("releasing purge dispatcher lease", "err", err)
			}
			cancel()
			return
		}
		d.log.Warn("purge dispatcher: stopped sending", "reason", why)
	}
}

// deliver is e's loop: send every row after its cursor, in order, until ctx
// ends.
func (d *Dispatcher) deliver(ctx context.Context, e *edgeState) {
	cursor := int64(-1) // not read yet
	failures := 0
	// fail counts and logs a failed step and waits out the backoff.
	fail := func(err error) {
		if ctx.Err() != nil {
			return // stopping: not a failure
		}
		failures++
		e.setErr(err)
		var refused *refusedError
		switch {
		case errors.As(err, &refused):
			e.refused.Inc()
			d.log.Error("edge refused the purge (401/403: its jwks.json lacks catalogd's signing key)", "edge", e.url, "err", err, "failures", failures)
		case errors.Is(err, errStore):
			e.storeErrs.Inc()
			d.log.Warn("purge outbox unreadable", "edge", e.url, "err", err, "failures", failures)
		default:
			e.unavailable.Inc()
			d.log.Warn("purge not delivered, will retry", "edge", e.url, "err", err, "failures", failures)
		}
		sleep(ctx, d.backoff(failures))
	}
	for ctx.Err() == nil {
		if cursor < 0 {
			c, err := d.st.PurgeCursor(ctx, e.url)
			if err != nil {
				fail(fmt.Errorf("%w: %w", errStore, err))
				continue
			}
			cursor = c
		}
		batch, err := d.st.PendingPurges(ctx, cursor, d.cfg.Batch)
		if err != nil {
			fail(fmt.Errorf("%w: %w", errStore, err))
			continue
		}
		if len(batch) == 0 {
			e.setBacklog(0, time.Time{})
			select {
			case <-ctx.Done():
			case <-e.kick:
			case <-time.After(d.cfg.PollInterval):
			}
			continue
		}
		if len(batch) < d.cfg.Batch {
			e.setBacklog(len(batch), batch[0].CreatedAt)
		} else if n, oldest, err := d.st.PurgeBacklog(ctx, cursor); err == nil {
			e.setBacklog(n, oldest)
		} else {
			e.setBacklog(len(batch), batch[0].CreatedAt)
		}
		if err := d.sendTraced(ctx, e.url, batch); err != nil {
			fail(err)
			continue
		}
		last := batch[len(batch)-1].ID
		e.delivered.Add(len(batch))
		if failures > 0 {
			d.log.Info("edge acknowledged purges again", "edge", e.url, "after_failures", failures)
		}
		failures = 0
		e.setErr(nil)
		d.log.Debug("purges delivered", "edge", e.url, "rows", len(batch), "through_id", last)
		// The edge has the rows: move on even if the cursor write fails
		// (it is rewritten with the next ack; a restart re-sends, which
		// is harmless). The write outlives a shutdown that began during
		// the request, briefly.
		cursor = last
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := d.st.AckPurges(actx, e.url, last); err != nil {
			e.storeErrs.Inc()
			d.log.Warn("recording purge cursor", "edge", e.url, "err", err)
		}
		cancel()
	}
}

// prune deletes acknowledged rows every PruneInterval.
func (d *Dispatcher) prune(ctx context.Context) {
	t := time.NewTicker(d.cfg.PruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := d.st.PrunePurges(ctx, d.names, d.cfg.Now().Add(-d.cfg.Retain))
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("pruning purge outbox", "err", err)
			}
			continue
		}
		if n > 0 {
			d.pruned.Add(int(n))
			d.log.Debug("pruned purge outbox", "rows", n)
		}
	}
}

// backoff is the wait after the n-th consecutive failure (n ≥ 1): the
// capped exponential delay, jittered to between half and all of it.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.cfg.BackoffMin
	for i := 1; i < n && delay < d.cfg.BackoffMax; i++ {
		delay *= 2
	}
	delay = min(delay, d.cfg.BackoffMax)
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

// errStore marks failures to read the outbox.
var errStore = errors.New("store")

// refusedError is an edge's 4xx answer: the request will not succeed by
// being repeated until the configuration changes.
type refusedError struct {
	status int
	body   string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("edge answered %d %s", e.status, e.body)
}

type purgeRequest struct {
	Prefixes []string `json:"prefixes"`
}

// sendTraced sends batch to the edge at base in a span of its own (the
// root of a new trace, head-sampled: see obs.StartTrace) naming the edge,
// the rows and the outcome; the request carries its traceparent, so the
// edge's server span for the purge joins the trace.
func (d *Dispatcher) sendTraced(ctx context.Context, base string, batch []store.PurgeEntry) error {
	prefixes := prefixesOf(batch)
	ctx, span := d.obs.StartTrace(ctx, "purge delivery", attribute.String("purge.edge", base),
		attribute.Int("purge.rows", len(batch)), attribute.Int("purge.prefixes", len(prefixes)))
	err := d.send(ctx, base, prefixes)
	var refused *refusedError
	switch {
	case err == nil:
		span.SetAttributes(attribute.String("purge.outcome", "delivered"))
	case errors.As(err, &refused):
		span.SetAttributes(attribute.String("purge.outcome", "refused"), attribute.Int("http.response.status_code", refused.status))
	default:
		span.SetAttributes(attribute.String("purge.outcome", "unavailable"))
	}
	obs.EndSpan(span, err)
	return err
}

// send posts one purge request for prefixes to the edge at base.
func (d *Dispatcher) send(ctx context.Context, base string, prefixes []string) error {
	tok, err := d.cfg.Signer.Mint(playtoken.Claims{Type: playtoken.TypePurge, Subject: "catalogd", Prefix: cover(prefixes)}, d.cfg.TokenTTL)
	if err != nil {
		return fmt.Errorf("purge token: %w", err)
	}
	body, err := json.Marshal(purgeRequest{Prefixes: prefixes})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/purge", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	d.obs.Inject(ctx, req.Header)
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	switch {
	case resp.StatusCode == http.StatusOK:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return &refusedError{status: resp.StatusCode, body: strings.TrimSpace(string(snippet))}
	}
	return fmt.Errorf("edge answered %d %s", resp.StatusCode, strings.TrimSpace(string(snippet)))
}

// prefixesOf returns the distinct prefixes of batch in order.
func prefixesOf(batch []store.PurgeEntry) []string {
	seen := make(map[string]bool, len(batch))
	ps := make([]string, 0, len(batch))
	for _, e := range batch {
		if !seen[e.Prefix] {
			seen[e.Prefix] = true
			ps = append(ps, e.Prefix)
		}
	}
	return ps
}

// cover returns the narrowest folder a purge token may name that covers
// every prefix: their longest common artist, album or song folder
// (blobkey.PurgeFolders), or blobkey.Root (everything).
func cover(prefixes []string) string {
	if len(prefixes) == 0 {
		return blobkey.Root
	}
	common := prefixes[0]
	for _, p := range prefixes[1:] {
		n := 0
		for n < len(common) && n < len(p) && common[n] == p[n] {
			n++
		}
		common = common[:n]
	}
	folder := blobkey.Root
	if strings.HasPrefix(common, blobkey.Root) {
		for _, n := range blobkey.PurgeFolders(common) {
			if n > 0 {
				folder = common[:n] // ends in '/', so a whole folder of every prefix
			}
		}
	}
	return folder
}
