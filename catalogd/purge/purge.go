package purge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel/attribute"

	"riff/catalogd/outbox"
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

// LeaseName names the dispatcher's lease.
const LeaseName = "purge-dispatcher"

// Signer mints purge tokens; *playtoken.Signer is one.
type Signer interface {
	Mint(c playtoken.Claims, ttl time.Duration) (string, error)
}

// Config configures a Dispatcher. Edges and Signer are required; zero
// durations and counts take the defaults shown, and those of
// outbox.Schedule (polling, backoff, LagThreshold 1m, retention of
// acknowledged rows, the lease LeaseName).
type Config struct {
	outbox.Schedule
	// Edges are the edges' admin base URLs, http(s)://host:port (the
	// listener that serves POST /purge). An edge's cursor is stored under
	// its URL as written here (a trailing slash removed).
	Edges []string
	// Signer mints the purge tokens the edges verify.
	Signer Signer
	// Client sends the requests. Default: a client of its own with a 10s
	// timeout, whose idle connections Close closes.
	Client *http.Client
	// Batch caps the prefixes in one request. Default and maximum 1000
	// (what an edge accepts).
	Batch int
	// TokenTTL is the lifetime of the token minted for each request.
	// Default 1m.
	TokenTTL time.Duration
}

// maxBatch is the most prefixes an edge takes in one purge request.
const maxBatch = 1000

func (c *Config) defaults() {
	if c.TokenTTL <= 0 {
		c.TokenTTL = time.Minute
	}
	if c.Batch <= 0 || c.Batch > maxBatch {
		c.Batch = maxBatch
	}
}

// Dispatcher sends the purge outbox to every configured edge (see the
// package doc and package outbox). New has no side effects beyond
// registering metrics; Run does the work until its context ends or Close
// is called; Close is idempotent and works whether or not Run was called.
// Kick, Ready and Detail are safe for concurrent use at any time.
type Dispatcher struct {
	cfg       Config
	st        Store
	obs       *obs.Obs
	log       *slog.Logger
	ownClient bool
	out       *outbox.Dispatcher
	edges     map[string]*edgeMetrics
}

// edgeMetrics counts one edge's deliveries and failures.
type edgeMetrics struct {
	delivered                       *metrics.Counter
	unavailable, refused, storeErrs *metrics.Counter
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
	cfg.defaults()
	d := &Dispatcher{cfg: cfg, st: st, obs: o, log: o.Logger.With("part", "purge"), edges: map[string]*edgeMetrics{}}
	set := o.Metrics
	var names []string
	for _, raw := range cfg.Edges {
		u := strings.TrimSuffix(strings.TrimSpace(raw), "/")
		pu, err := url.Parse(u)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil ||
			pu.RawQuery != "" || pu.Fragment != "" {
			return nil, fmt.Errorf("purge: edge %q: want http(s)://host:port of its admin listener, without credentials", raw)
		}
		d.edges[u] = &edgeMetrics{
			delivered:   set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, u)),
			unavailable: set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="unavailable"}`, u)),
			refused:     set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="refused"}`, u)),
			storeErrs:   set.GetOrCreateCounter(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="store"}`, u)),
		}
		names = append(names, u)
	}
	sch := cfg.Schedule
	out, err := outbox.New(o, d.log, edgeRows{d}, names, sch,
		outbox.Names{Work: "purge delivery", Lease: LeaseName, Target: "edge", Rows: "purges"},
		outbox.Metrics{
			TargetPending: `riff_purge_edge_pending{edge=%q}`, TargetLag: `riff_purge_edge_lag_seconds{edge=%q}`,
			Pending: `riff_purge_outbox_pending`, Oldest: `riff_purge_oldest_undelivered_seconds`,
			Pruned: `riff_purge_pruned_total`, Dispatcher: `riff_purge_dispatcher`,
		})
	if err != nil {
		return nil, fmt.Errorf("purge: %w", err)
	}
	d.out = out
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
	return d, nil
}

// Edges returns the edges' admin URLs as the Dispatcher names them.
func (d *Dispatcher) Edges() []string { return d.out.Names() }

// Run delivers purges until ctx ends or Close is called, then returns nil
// (at once if Close came first). With Config.Lease it delivers only while
// it holds the lease, and releases it on the way out. It returns an error
// if the Dispatcher is already running.
func (d *Dispatcher) Run(ctx context.Context) error {
	err := d.out.Run(ctx)
	if d.ownClient {
		d.cfg.Client.CloseIdleConnections()
	}
	return err
}

// Close stops Run and waits for it to return. It is idempotent, and safe
// to call when Run was never called.
func (d *Dispatcher) Close() error {
	err := d.out.Close()
	if d.ownClient {
		d.cfg.Client.CloseIdleConnections()
	}
	return err
}

// Kick wakes every idle edge to look for new rows now, instead of at its
// next poll. Call it after committing a change that enqueued purges. An
// edge waiting out a backoff keeps waiting. Kick never blocks, and does
// nothing on a nil Dispatcher (no fan-out configured).
func (d *Dispatcher) Kick() {
	if d != nil {
		d.out.Kick()
	}
}

// Ready reports an error naming every edge whose oldest unacknowledged
// purge is older than Config.LagThreshold; use it as a readiness check.
func (d *Dispatcher) Ready(ctx context.Context) error { return d.out.Ready(ctx) }

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
	targets := d.out.Targets()
	b := Backlog{Edges: len(targets), Dispatcher: d.out.Leader()}
	for _, t := range targets {
		n, _ := t.Backlog()
		lag := d.out.Lag(t)
		b.Pending = max(b.Pending, n)
		b.OldestSecs = max(b.OldestSecs, lag.Seconds())
		if lag > d.out.LagThreshold() {
			b.Lagging++
		}
	}
	return b
}

// edgeRows is the purge outbox as package outbox delivers it.
type edgeRows struct{ d *Dispatcher }

func (r edgeRows) Cursor(ctx context.Context, edge string) (int64, error) {
	c, err := r.d.st.PurgeCursor(ctx, edge)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", errStore, err)
	}
	return c, nil
}

func (r edgeRows) Prune(ctx context.Context, edges []string, before time.Time) (int64, error) {
	return r.d.st.PrunePurges(ctx, edges, before)
}

// Deliver sends the next batch after cursor to edge t in one request.
func (r edgeRows) Deliver(ctx context.Context, t *outbox.Target, cursor int64) (int64, error) {
	d := r.d
	batch, err := d.st.PendingPurges(ctx, cursor, d.cfg.Batch)
	if err != nil {
		return cursor, fmt.Errorf("%w: %w", errStore, err)
	}
	if len(batch) == 0 {
		return cursor, nil
	}
	if len(batch) < d.cfg.Batch {
		t.SetBacklog(len(batch), batch[0].CreatedAt)
	} else if n, oldest, err := d.st.PurgeBacklog(ctx, cursor); err == nil {
		t.SetBacklog(n, oldest)
	} else {
		t.SetBacklog(len(batch), batch[0].CreatedAt)
	}
	if err := d.sendTraced(ctx, t.Name, batch); err != nil {
		return cursor, err
	}
	last := batch[len(batch)-1].ID
	d.edges[t.Name].delivered.Add(len(batch))
	d.log.Debug("purges delivered", "edge", t.Name, "rows", len(batch), "through_id", last)
	// The edge has the rows: move on even if the cursor write fails (it
	// is rewritten with the next ack; a restart re-sends, which is
	// harmless). The write outlives a shutdown that began during the
	// request, briefly.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := d.st.AckPurges(actx, t.Name, last); err != nil {
		d.edges[t.Name].storeErrs.Inc()
		d.log.Warn("recording purge cursor", "edge", t.Name, "err", err)
	}
	return last, nil
}

// Failed counts and logs a failed attempt by its kind.
func (r edgeRows) Failed(t *outbox.Target, err error, failures int) {
	d, m := r.d, r.d.edges[t.Name]
	var refused *refusedError
	switch {
	case errors.As(err, &refused):
		m.refused.Inc()
		d.log.Error("edge refused the purge (401/403: its jwks.json lacks catalogd's signing key)", "edge", t.Name, "err", err, "failures", failures)
	case errors.Is(err, errStore):
		m.storeErrs.Inc()
		d.log.Warn("purge outbox unreadable", "edge", t.Name, "err", err, "failures", failures)
	default:
		m.unavailable.Inc()
		d.log.Warn("purge not delivered, will retry", "edge", t.Name, "err", err, "failures", failures)
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
