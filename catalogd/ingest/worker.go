package ingest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/obs"
	"riff/packager"
)

// Store is what the worker needs of the database: the job queue, uploads
// and songs. *store.Store implements it.
type Store interface {
	ClaimJob(ctx context.Context, owner string, lease time.Duration) (store.Job, bool, error)
	RenewLease(ctx context.Context, id int64, owner string, lease time.Duration) error
	SetJobProgress(ctx context.Context, id int64, owner, stage string, percent int) error
	RetryJob(ctx context.Context, id int64, owner, reason string, backoff time.Duration, permanent bool) (bool, error)
	ReleaseJob(ctx context.Context, id int64, owner string) error
	FinishJob(ctx context.Context, id int64, owner, stage string) error
	UploadByID(ctx context.Context, id int64) (store.Upload, error)
	SongByID(ctx context.Context, id int64) (store.Song, error)
	PublishUpload(ctx context.Context, id int64, owner string, p store.Published, gcAt time.Time) (int, error)
	CompleteGC(ctx context.Context, id int64, owner string) error
}

// Config holds the worker's settings. New fills zero fields with the
// defaults noted.
type Config struct {
	// Workers is how many jobs run at once (default 2).
	Workers int
	// Lease is how long a claimed job is leased (default 30s); it is
	// renewed at a third of it.
	Lease time.Duration
	// Backoff is the wait before the first retry of a failed job (default
	// 5s), doubling with each attempt, at most an hour.
	Backoff time.Duration
	// Poll is how often idle workers look for due jobs (default 1s).
	Poll time.Duration
	// GCAfter is how long after a version is superseded (or taken down)
	// its media may be deleted: the playback-token lifetime plus a margin
	// for clock skew. Zero collects at once.
	GCAfter time.Duration
	// TempDir holds originals fetched for ffmpeg (default the system
	// temporary folder).
	TempDir string
}

func (c *Config) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Backoff <= 0 {
		c.Backoff = 5 * time.Second
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
}

// Deps are the parts a Worker is built from. Logger, Metrics, Store, Blob
// and Packager are required.
type Deps struct {
	Logger   *slog.Logger
	Metrics  *metrics.Set // riff_jobs_running, riff_jobs_total, riff_job_duration_seconds
	Store    Store
	Blob     blob.Store // originals and packaged media
	Packager *packager.Packager
	// Purged, if set, is called after a change that queued edge purges
	// commits (the purge dispatcher's Kick).
	Purged func()
	// Now is the clock of GCAfter (default time.Now): the clock that
	// mints playback tokens.
	Now func() time.Time
	// Report, if set, gets every job that failed for good (obs.ReportError:
	// the error tracker).
	Report func(context.Context, obs.Failure)
	// Tracer, if set and tracing, gets a span per job and its stages (fetch
	// original, each encode, package, publish); a package job continues the
	// trace of the upload that queued it.
	Tracer *obs.Obs
}

// Worker runs packaging and gc jobs. It is safe for concurrent use; New
// starts nothing.
type Worker struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics.Set
	store  Store
	blob   blob.Store
	pk     *packager.Packager
	purged func()
	now    func() time.Time
	report func(context.Context, obs.Failure)
	tracer *obs.Obs      // nil: no spans
	kick   chan struct{} // wakes an idle worker
}

// New returns a Worker for cfg and d; it starts nothing.
func New(cfg Config, d Deps) (*Worker, error) {
	if d.Logger == nil || d.Metrics == nil || d.Store == nil || d.Blob == nil || d.Packager == nil {
		return nil, errors.New("ingest: New: missing dependencies")
	}
	cfg.setDefaults()
	w := &Worker{cfg: cfg, log: d.Logger, m: d.Metrics, store: d.Store, blob: d.Blob, pk: d.Packager,
		purged: d.Purged, now: d.Now, report: d.Report, tracer: d.Tracer, kick: make(chan struct{}, 1)}
	if w.report == nil {
		w.report = func(context.Context, obs.Failure) {}
	}
	if w.purged == nil {
		w.purged = func() {}
	}
	if w.now == nil {
		w.now = time.Now
	}
	return w, nil
}

// Run runs Config.Workers job workers until ctx is cancelled, then waits
// for them: a worker stopped mid-job hands the job back to the queue (the
// packager deletes what it wrote), so the next start, here or on another
// catalogd, picks it up at once. A worker that dies without that (a crash)
// leaves its lease to run out, and the job is claimed again then.
func (w *Worker) Run(ctx context.Context) error {
	var id [4]byte
	_, _ = rand.Read(id[:])
	host, _ := os.Hostname()
	var wg sync.WaitGroup
	for i := range w.cfg.Workers {
		owner := fmt.Sprintf("%s/%d/%s/%d", host, os.Getpid(), hex.EncodeToString(id[:]), i)
		wg.Go(func() { w.loop(ctx, owner) })
	}
	wg.Wait()
	return nil
}

// Kick wakes an idle worker (a job was queued here). It never blocks, and
// does nothing on a nil Worker.
func (w *Worker) Kick() {
	if w == nil {
		return
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Worker) loop(ctx context.Context, owner string) {
	tick := time.NewTicker(w.cfg.Poll)
	defer tick.Stop()
	for ctx.Err() == nil {
		claimStart := time.Now()
		j, ok, err := w.store.ClaimJob(ctx, owner, w.cfg.Lease)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("claiming a job", "err", err)
		}
		if !ok {
			select {
			case <-ctx.Done():
			case <-w.kick:
			case <-tick.C:
			}
			continue
		}
		w.runJob(ctx, j, owner, claimStart, time.Now())
	}
}

// permanentError marks a job failure that retrying cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// runJob works on a claimed job while renewing its lease, and records how
// it ended. The claim took [claimStart, claimed).
func (w *Worker) runJob(ctx context.Context, j store.Job, owner string, claimStart, claimed time.Time) {
	log := w.log.With("job", j.ID, "kind", j.Kind, "song", j.SongID, "version", j.Version, "attempt", j.Attempts)
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost bool
	var mu sync.Mutex
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(w.cfg.Lease / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				if err := w.store.RenewLease(jctx, j.ID, owner, w.cfg.Lease); errors.Is(err, store.ErrLeaseLost) {
					mu.Lock()
					lost = true
					mu.Unlock()
					cancel()
					return
				} else if err != nil && jctx.Err() == nil {
					log.Warn("renewing a job lease", "err", err)
				}
			}
		}
	}()
	start := time.Now()
	running := w.m.GetOrCreateGauge(`riff_jobs_running`, nil)
	running.Inc()
	defer running.Dec()
	outcome := "done"
	defer func() {
		w.m.GetOrCreateCounter(fmt.Sprintf(`riff_jobs_total{kind=%q,outcome=%q}`, j.Kind, outcome)).Inc()
		// Prometheus buckets from 1 s to 34 min: a job is an encode, not a request.
		w.m.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`riff_job_duration_seconds{kind=%q}`, j.Kind), metrics.ExponentialBuckets(1, 2, 12)).UpdateDuration(start)
	}()
	var err error
	// The job's span, under the queuing upload's request when it was
	// traced (sctx: jctx's cancellation, plus the span), from the claim on;
	// queue.wait_ms is how long the job was due before a worker took it.
	sctx, span := w.tracer.StartSpanAt(obs.ContinueTrace(jctx, j.TraceParent), "job "+j.Kind, claimStart,
		attribute.Int64("song_id", j.SongID), attribute.Int64("job_id", j.ID), attribute.Int("attempt", j.Attempts),
		attribute.Int64("queue.wait_ms", max(0, claimStart.Sub(j.RunAt).Milliseconds())))
	defer func() { obs.EndSpan(span, err) }()
	_, claim := w.tracer.StartSpanAt(sctx, "claim", claimStart)
	claim.End(trace.WithTimestamp(claimed))
	switch j.Kind {
	case store.JobPackage:
		err = w.packageJob(sctx, j, owner)
	case store.JobGC:
		err = w.gcJob(sctx, j, owner)
	default:
		err = permanentError{fmt.Errorf("unknown job kind %q", j.Kind)}
	}
	cancel()
	<-renewDone
	mu.Lock()
	leaseLost := lost || errors.Is(err, store.ErrLeaseLost)
	mu.Unlock()
	bg, bgCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer bgCancel()
	switch {
	case err == nil:
		log.Info("job done", "took", time.Since(start).Round(time.Millisecond))
	case leaseLost && w.takenDown(bg, j):
		// TakeDown cancels the song's unfinished jobs: the lease is gone
		// because the job is, not because another worker has it.
		outcome = "cancelled"
		log.Info("job cancelled: the song was taken down")
	case leaseLost:
		outcome = "lost"
		log.Warn("job lease lost; another worker has it", "err", err)
	case ctx.Err() != nil:
		outcome = "released"
		if rerr := w.store.ReleaseJob(bg, j.ID, owner); rerr != nil {
			log.Warn("handing a job back on shutdown", "err", rerr)
		} else {
			log.Info("job handed back on shutdown")
		}
	default:
		var pe permanentError
		permanent := errors.As(err, &pe)
		backoff := w.cfg.Backoff << min(j.Attempts-1, 10)
		failed, rerr := w.store.RetryJob(bg, j.ID, owner, reasonOf(err), min(backoff, time.Hour), permanent)
		outcome = "retried"
		if rerr != nil {
			log.Warn("recording a job failure", "err", rerr, "job_err", err)
		} else if failed {
			outcome = "failed"
			log.Error("job failed", "err", err)
			w.report(bg, obs.Failure{Route: "job " + j.Kind, Err: err, Tags: map[string]string{
				"song_id": strconv.FormatInt(j.SongID, 10), "job_id": strconv.FormatInt(j.ID, 10),
				"stage": j.Stage, "attempts": strconv.Itoa(j.Attempts), "reason": reasonOf(err)}})
		} else {
			log.Warn("job attempt failed; will retry", "err", err, "backoff", backoff)
		}
	}
}

// reasonOf is the failure text an artist reads on GET /songs/{id}.
func reasonOf(err error) string {
	var pe *packager.ProbeError
	var ee *packager.ExecError
	var perm permanentError
	switch {
	case errors.As(err, &pe) && !errors.Is(err, packager.ErrUndecodable):
		return "the audio was refused: " + pe.Kind.Error() + ": " + pe.Reason
	case errors.As(err, &pe), errors.As(err, &ee):
		return "transcoding failed: ffmpeg could not encode the audio"
	case errors.As(err, &perm):
		return perm.Error()
	}
	return "packaging failed on the server (storage or database error)"
}

// takenDown reports whether j's song is taken down (its package job was
// cancelled).
func (w *Worker) takenDown(ctx context.Context, j store.Job) bool {
	if j.Kind != store.JobPackage {
		return false
	}
	so, err := w.store.SongByID(ctx, j.SongID)
	return err == nil && so.Status == store.StatusTakenDown
}

// gcTime is when media superseded now may be deleted.
func (w *Worker) gcTime() time.Time { return w.now().Add(w.cfg.GCAfter) }
