package catalogd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/packager"
)

// permanentError marks a job failure that retrying cannot fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// RunJobs runs Config.Workers job workers until ctx is cancelled, then
// waits for them: a worker stopped mid-job hands the job back to the
// queue (the packager deletes what it wrote), so the next start, here or
// on another catalogd, picks it up at once. A worker that dies without
// that (a crash) leaves its lease to run out, and the job is claimed
// again then. It returns an error only when ingest is not configured.
func (s *Server) RunJobs(ctx context.Context) error {
	if err := s.ingestReady(); err != nil {
		return errors.New("catalogd: jobs: no blob store or packager")
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	host, _ := os.Hostname()
	var wg sync.WaitGroup
	for i := range s.cfg.Workers {
		owner := fmt.Sprintf("%s/%d/%s/%d", host, os.Getpid(), hex.EncodeToString(id[:]), i)
		wg.Go(func() { s.worker(ctx, owner) })
	}
	wg.Wait()
	return nil
}

// kickJobs wakes an idle worker (a job was queued here).
func (s *Server) kickJobs() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Server) worker(ctx context.Context, owner string) {
	tick := time.NewTicker(s.cfg.JobPoll)
	defer tick.Stop()
	for ctx.Err() == nil {
		j, ok, err := s.store.ClaimJob(ctx, owner, s.cfg.JobLease)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("claiming a job", "err", err)
		}
		if !ok {
			select {
			case <-ctx.Done():
			case <-s.kick:
			case <-tick.C:
			}
			continue
		}
		s.runJob(ctx, j, owner)
	}
}

// runJob works on a claimed job while renewing its lease, and records how
// it ended.
func (s *Server) runJob(ctx context.Context, j store.Job, owner string) {
	log := s.log.With("job", j.ID, "kind", j.Kind, "song", j.SongID, "version", j.Version, "attempt", j.Attempts)
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var lost bool
	var mu sync.Mutex
	renewDone := make(chan struct{})
	go func() {
		defer close(renewDone)
		t := time.NewTicker(s.cfg.JobLease / 3)
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				if err := s.store.RenewLease(jctx, j.ID, owner, s.cfg.JobLease); errors.Is(err, store.ErrLeaseLost) {
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
	running := s.obs.Metrics.GetOrCreateGauge(`riff_jobs_running`, nil)
	running.Inc()
	defer running.Dec()
	outcome := "done"
	defer func() {
		s.obs.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_jobs_total{kind=%q,outcome=%q}`, j.Kind, outcome)).Inc()
		// Prometheus buckets from 1 s to 34 min: a job is an encode, not a request.
		s.obs.Metrics.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`riff_job_duration_seconds{kind=%q}`, j.Kind), metrics.ExponentialBuckets(1, 2, 12)).UpdateDuration(start)
	}()
	var err error
	switch j.Kind {
	case store.JobPackage:
		err = s.packageJob(jctx, j, owner)
	case store.JobGC:
		err = s.gcJob(jctx, j, owner)
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
	case leaseLost:
		outcome = "lost"
		log.Warn("job lease lost; another worker has it", "err", err)
	case ctx.Err() != nil:
		outcome = "released"
		if rerr := s.store.ReleaseJob(bg, j.ID, owner); rerr != nil {
			log.Warn("handing a job back on shutdown", "err", rerr)
		} else {
			log.Info("job handed back on shutdown")
		}
	default:
		var pe permanentError
		permanent := errors.As(err, &pe)
		backoff := s.cfg.JobBackoff << min(j.Attempts-1, 10)
		failed, rerr := s.store.RetryJob(bg, j.ID, owner, reasonOf(err), min(backoff, time.Hour), permanent)
		outcome = "retried"
		if rerr != nil {
			log.Warn("recording a job failure", "err", rerr, "job_err", err)
		} else if failed {
			outcome = "failed"
			log.Error("job failed", "err", err)
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

// packageJob packages an upload into its version folder and publishes
// it. It is idempotent: an attempt first removes whatever an earlier,
// interrupted attempt left in the folder (the version is not current, so
// nothing plays from it), and publishing the same version twice changes
// nothing.
func (s *Server) packageJob(ctx context.Context, j store.Job, owner string) error {
	up, err := s.store.UploadByID(ctx, j.UploadID)
	if err != nil {
		return permanentError{err}
	}
	so, err := s.store.SongByID(ctx, j.SongID)
	if err != nil {
		return permanentError{err}
	}
	if so.CurrentVersion >= j.Version || so.Status == store.StatusTakenDown {
		_, err := s.store.PublishUpload(ctx, j.ID, owner, store.Published{}, s.gcTime())
		return err
	}
	prefix := blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, j.Version)
	prog := &progressWriter{s: s, ctx: ctx, job: j.ID, owner: owner}
	prog.set("fetch", 1, true)

	src, err := s.fetchOriginal(ctx, up)
	if err != nil {
		return err
	}
	defer os.Remove(src)
	if err := s.clearPrefix(ctx, prefix); err != nil {
		return err
	}
	res, err := s.pk.Package(ctx, src, s.blob, prefix, prog.packager)
	if err != nil {
		// The upload decoded once already, so an ffmpeg failure now
		// (ErrUndecodable) may be the machine's (killed, out of memory):
		// retried. What the probe refuses cannot change: not retried.
		if errors.Is(err, packager.ErrUnsupportedFormat) || errors.Is(err, packager.ErrNoAudio) || errors.Is(err, packager.ErrDuration) {
			return permanentError{err}
		}
		return fmt.Errorf("package %s: %w", prefix, err)
	}
	rs := make([]store.Rendition, 0, len(res.Renditions))
	for _, r := range res.Renditions {
		rs = append(rs, store.Rendition{Format: r.Format, BitrateKbps: r.Kbps, BlobKey: r.Key, SizeBytes: r.Size})
	}
	dur := res.Duration
	if res.Probe != nil && res.Probe.Duration > 0 {
		dur = res.Probe.Duration
	}
	old, err := s.store.PublishUpload(ctx, j.ID, owner, store.Published{Renditions: rs, DurationMS: dur.Milliseconds()}, s.gcTime())
	if err != nil {
		return err
	}
	if old > 0 {
		s.purged()
	}
	return nil
}

// fetchOriginal copies an upload's original from the blob store to a
// temporary file for ffmpeg.
func (s *Server) fetchOriginal(ctx context.Context, up store.Upload) (string, error) {
	rc, _, err := s.blob.Get(ctx, up.BlobKey, nil)
	if errors.Is(err, blob.ErrNotFound) {
		return "", permanentError{errors.New("the uploaded file was never stored (the upload was interrupted); upload it again")}
	}
	if err != nil {
		return "", fmt.Errorf("fetch original: %w", err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(s.cfg.UploadDir, "riff-original-*")
	if err != nil {
		return "", fmt.Errorf("fetch original: %w", err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("fetch original: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("fetch original: %w", err)
	}
	return f.Name(), nil
}

// clearPrefix deletes every object under prefix.
func (s *Server) clearPrefix(ctx context.Context, prefix string) error {
	var keys []string
	for info, err := range s.blob.List(ctx, prefix) {
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		keys = append(keys, info.Key)
	}
	for _, k := range keys {
		if err := s.blob.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return nil
}

// gcJob deletes a superseded or taken-down version's objects, then drops
// its renditions and purges its folder at the edges. A version that is
// current again is kept.
func (s *Server) gcJob(ctx context.Context, j store.Job, owner string) error {
	so, err := s.store.SongByID(ctx, j.SongID)
	if err != nil {
		return permanentError{err}
	}
	if so.Status != store.StatusTakenDown && so.CurrentVersion == j.Version {
		return s.store.FinishJob(ctx, j.ID, owner, "kept")
	}
	if err := s.clearPrefix(ctx, blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, j.Version)); err != nil {
		return err
	}
	if err := s.store.CompleteGC(ctx, j.ID, owner); err != nil {
		return err
	}
	s.purged()
	return nil
}

// progressWriter turns packager progress into the job's stage and
// percent, written at most every half second (and on stage changes).
type progressWriter struct {
	s     *Server
	ctx   context.Context
	job   int64
	owner string

	stage string
	last  time.Time
	done  map[string]float64 // rendition → fraction encoded
}

func (p *progressWriter) set(stage string, percent int, force bool) {
	if !force && stage == p.stage && time.Since(p.last) < 500*time.Millisecond {
		return
	}
	p.stage, p.last = stage, time.Now()
	if err := p.s.store.SetJobProgress(p.ctx, p.job, p.owner, stage, percent); err != nil && p.ctx.Err() == nil {
		p.s.log.Debug("job progress", "job", p.job, "err", err)
	}
}

// packager is the packager's progress callback: probe 2%, transcode up to
// 90% (the mean of the renditions' progress), package 92%, publish 95%.
func (p *progressWriter) packager(pg packager.Progress) {
	switch pg.Stage {
	case packager.StageProbe:
		p.set(pg.Stage, 2, true)
	case packager.StageTranscode:
		if p.done == nil {
			p.done = map[string]float64{}
		}
		if pg.Total > 0 && pg.Rendition != "" {
			p.done[pg.Rendition] = min(1, float64(pg.Done)/float64(pg.Total))
		}
		n := len(p.s.pk.Config().Ladder) * len(p.s.pk.Config().Formats)
		sum := 0.0
		for _, f := range p.done {
			sum += f
		}
		pct := 5
		if n > 0 {
			pct += int(85 * sum / float64(n))
		}
		p.set(pg.Stage, pct, pg.Stage != p.stage)
	case packager.StagePackage:
		p.set(pg.Stage, 92, true)
	case packager.StagePublish:
		p.set(pg.Stage, 95, true)
	}
}

// jobProgress returns the newest package job of a song when it should be
// shown: to the song's owner, while a version is on its way or when it
// failed (a failed replacement shows until the next upload).
func (s *Server) jobProgress(ctx context.Context, p principal, so store.Song) *jobView {
	if p.UserID == 0 || (p.Role != store.RoleArtist && p.Role != store.RoleAdmin && so.Status == store.StatusReady) {
		return nil
	}
	j, err := s.store.LatestJob(ctx, so.ID, store.JobPackage)
	if err != nil || j.State == store.JobDone {
		return nil
	}
	if so.Status == store.StatusReady {
		if _, err := s.ownedArtist(ctx, p, so.AlbumArtistID, ""); err != nil {
			return nil
		}
	}
	return newJobView(j)
}
