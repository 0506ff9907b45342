package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"riff/internal/blobkey"
)

// Job kinds and states.
const (
	JobPackage = "package" // transcode and publish an upload
	JobGC      = "gc"      // delete a superseded or taken-down version's objects

	JobQueued  = "queued"
	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// ErrLeaseLost: the job is no longer leased to the caller (its lease ran
// out and another worker claimed it, or it was cancelled).
var ErrLeaseLost = errors.New("job lease lost")

// Job is a row of the durable job queue.
type Job struct {
	ID          int64
	Kind        string
	SongID      int64
	UploadID    int64 // package jobs
	Version     int
	State       string
	Attempts    int // claims so far, this one included
	MaxAttempts int
	RunAt       time.Time
	LeaseOwner  string
	LeaseUntil  time.Time
	Stage       string
	Percent     int
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	TraceParent string // the queuing upload's traceparent (package jobs), or ""
}

const jobColumns = `id, kind, song_id, COALESCE(upload_id, 0), version, state, attempts, max_attempts, run_at,
	lease_owner, lease_until, stage, percent, last_error, created_at, updated_at, trace_parent`

func scanJob(row scanner) (Job, error) {
	var j Job
	var runAt, leaseUntil, created, updated int64
	err := row.Scan(&j.ID, &j.Kind, &j.SongID, &j.UploadID, &j.Version, &j.State, &j.Attempts, &j.MaxAttempts, &runAt,
		&j.LeaseOwner, &leaseUntil, &j.Stage, &j.Percent, &j.LastError, &created, &updated, &j.TraceParent)
	j.RunAt, j.LeaseUntil, j.CreatedAt, j.UpdatedAt = fromMs(runAt), fromMs(leaseUntil), fromMs(created), fromMs(updated)
	return j, err
}

// ClaimJob leases the next due job to owner for lease and returns it, or
// false when none is due. Due are queued jobs whose run_at has come and
// running jobs whose lease has run out (their worker died); each claim
// counts as an attempt. A job whose lease ran out on its last attempt is
// failed instead (and its song, if it has no published version). On
// PostgreSQL concurrent claimers skip each other's rows (FOR UPDATE SKIP
// LOCKED); on SQLite the single writer connection serialises them.
func (s *JobQueue) ClaimJob(ctx context.Context, owner string, lease time.Duration) (Job, bool, error) {
	var j Job
	found := false
	lock := ""
	if s.dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.nowMs()
		for {
			var id int64
			var attempts, maxAttempts int
			err := tx.QueryRowContext(ctx, `SELECT id, attempts, max_attempts FROM jobs WHERE state = 'running' AND lease_until <= $1
				ORDER BY lease_until, id LIMIT 1`+lock, now).Scan(&id, &attempts, &maxAttempts)
			if errors.Is(err, sql.ErrNoRows) {
				err = tx.QueryRowContext(ctx, `SELECT id, attempts, max_attempts FROM jobs WHERE state = 'queued' AND run_at <= $1
					ORDER BY run_at, id LIMIT 1`+lock, now).Scan(&id, &attempts, &maxAttempts)
			}
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			if attempts >= maxAttempts {
				// The worker of the last attempt died: give up.
				if err := s.failJob(ctx, tx, id, fmt.Sprintf("the worker stopped responding on attempt %d of %d", attempts, maxAttempts), now); err != nil {
					return err
				}
				continue
			}
			j, err = scanJob(tx.QueryRowContext(ctx, `UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_owner = $1,
				lease_until = $2, updated_at = $3 WHERE id = $4 RETURNING `+jobColumns, owner, now+lease.Milliseconds(), now, id))
			found = err == nil
			return err
		}
	})
	if err != nil {
		return Job{}, false, fmt.Errorf("store: claim job: %w", err)
	}
	return j, found, nil
}

// RenewLease extends owner's lease on job id to lease from now. The error
// wraps ErrLeaseLost when owner no longer holds it.
func (s *JobQueue) RenewLease(ctx context.Context, id int64, owner string, lease time.Duration) error {
	now := s.nowMs()
	return s.leased(ctx, s.w, id, owner, `UPDATE jobs SET lease_until = $1, updated_at = $2 WHERE id = $3 AND lease_owner = $4 AND state = 'running'`,
		now+lease.Milliseconds(), now, id, owner)
}

// SetJobProgress records the stage and percent of job id while owner
// works on it (shown on GET /songs/{id}).
func (s *JobQueue) SetJobProgress(ctx context.Context, id int64, owner, stage string, percent int) error {
	return s.leased(ctx, s.w, id, owner, `UPDATE jobs SET stage = $1, percent = $2, updated_at = $3 WHERE id = $4 AND lease_owner = $5 AND state = 'running'`,
		stage, percent, s.nowMs(), id, owner)
}

// leased runs an update of one job row held by its owner.
func (s *JobQueue) leased(ctx context.Context, db execer, id int64, owner, q string, args ...any) error {
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: job %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: job %d: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("store: job %d (%s): %w", id, owner, ErrLeaseLost)
	}
	return nil
}

// RetryJob records that owner's attempt at job id failed with reason. With
// attempts left and permanent false the job is queued again after
// backoff; otherwise it fails for good, and so does its song when no
// version of it is published. It reports whether the job failed for good.
func (s *JobQueue) RetryJob(ctx context.Context, id int64, owner, reason string, backoff time.Duration, permanent bool) (bool, error) {
	failed := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var attempts, maxAttempts int
		var state, leaseOwner string
		if err := tx.QueryRowContext(ctx, `SELECT attempts, max_attempts, state, lease_owner FROM jobs WHERE id = $1`, id).Scan(
			&attempts, &maxAttempts, &state, &leaseOwner); err != nil {
			return notFound(err, "job", id)
		}
		if state != JobRunning || leaseOwner != owner {
			return ErrLeaseLost
		}
		now := s.nowMs()
		if permanent || attempts >= maxAttempts {
			failed = true
			return s.failJob(ctx, tx, id, reason, now)
		}
		_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', run_at = $1, lease_owner = '', lease_until = 0,
			last_error = $2, updated_at = $3 WHERE id = $4`, now+backoff.Milliseconds(), reason, now, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: retry job %d: %w", id, err)
	}
	return failed, nil
}

// failJob fails job id for good with reason, and its song when that is a
// first upload (no version published).
func (s *JobQueue) failJob(ctx context.Context, tx *sql.Tx, id int64, reason string, now int64) error {
	var kind string
	var songID int64
	if err := tx.QueryRowContext(ctx, `UPDATE jobs SET state = 'failed', lease_owner = '', lease_until = 0, last_error = $1,
		updated_at = $2 WHERE id = $3 RETURNING kind, song_id`, reason, now, id).Scan(&kind, &songID); err != nil {
		return err
	}
	if kind != JobPackage {
		return nil
	}
	_, err := tx.ExecContext(ctx, `UPDATE songs SET status = 'failed', updated_at = $1
		WHERE id = $2 AND status = 'processing' AND current_version = 0`, now, songID)
	return err
}

// ReleaseJob hands job id back to the queue, due now, without counting
// owner's attempt: the worker is shutting down, not failing.
func (s *JobQueue) ReleaseJob(ctx context.Context, id int64, owner string) error {
	now := s.nowMs()
	return s.leased(ctx, s.w, id, owner, `UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = $1, lease_owner = '',
		lease_until = 0, updated_at = $1 WHERE id = $2 AND lease_owner = $3 AND state = 'running'`, now, id, owner)
}

// JobByID returns job id.
func (s *JobQueue) JobByID(ctx context.Context, id int64) (Job, error) {
	j, err := scanJob(s.write.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id))
	if err != nil {
		return j, notFound(err, "job", id)
	}
	return j, nil
}

// JobBacklog is the state of the queue for operators: jobs that are due
// and not yet claimed, and how long the oldest of them has waited.
type JobBacklog struct {
	Due       int
	OldestDue time.Duration // 0 when none is due
}

// Backlog returns the queue's JobBacklog (one indexed query: jobs_queued).
func (s *JobQueue) Backlog(ctx context.Context) (JobBacklog, error) {
	now := s.nowMs()
	var n int
	var oldest sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MIN(run_at) FROM jobs WHERE state = 'queued' AND run_at <= $1`, now).Scan(&n, &oldest)
	if err != nil {
		return JobBacklog{}, fmt.Errorf("store: job backlog: %w", err)
	}
	b := JobBacklog{Due: n}
	if oldest.Valid {
		b.OldestDue = time.Duration(now-oldest.Int64) * time.Millisecond
	}
	return b, nil
}

// LatestJob returns the newest job of kind for song id (ErrNotFound when
// there is none).
func (s *JobQueue) LatestJob(ctx context.Context, songID int64, kind string) (Job, error) {
	j, err := scanJob(s.read.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE song_id = $1 AND kind = $2
		ORDER BY id DESC LIMIT 1`, songID, kind))
	if err != nil {
		return j, notFound(err, "job of song", songID)
	}
	return j, nil
}

// Jobs returns the jobs of song id, oldest first.
func (s *JobQueue) Jobs(ctx context.Context, songID int64) ([]Job, error) {
	js, err := queryAll(ctx, s.write, scanJob, `SELECT `+jobColumns+` FROM jobs WHERE song_id = $1 ORDER BY id`, songID)
	if err != nil {
		return nil, fmt.Errorf("store: jobs of song %d: %w", songID, err)
	}
	return js, nil
}

// Published is what a package job produced.
type Published struct {
	Renditions []Rendition
	DurationMS int64
}

// PublishUpload finishes owner's package job id in one transaction: it
// records the renditions of the job's version, applies the upload's
// metadata and duration, makes the version current and the song ready,
// marks the job done and, when a version is superseded, queues its
// collection at gcAt and purges the song's folder at the edges (edges
// purge by artist, album or song folder, not by version). Running it again
// for the same version changes nothing. When the song was taken down or a
// newer version is current meanwhile, nothing is published and the
// version is queued for collection at once. It returns the superseded
// version (0: none).
func (s *JobQueue) PublishUpload(ctx context.Context, id int64, owner string, p Published, gcAt time.Time) (int, error) {
	old := 0
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		lock := ""
		if s.dialect == Postgres {
			lock = " FOR UPDATE"
		}
		j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`+lock, id))
		if err != nil {
			return notFound(err, "job", id)
		}
		if j.State != JobRunning || j.LeaseOwner != owner {
			return ErrLeaseLost
		}
		var up Upload
		if err := tx.QueryRowContext(ctx, `SELECT title, genre, track_number, explicit FROM uploads WHERE id = $1`, j.UploadID).Scan(
			&up.Title, &up.Genre, &up.TrackNumber, &up.Explicit); err != nil {
			return notFound(err, "upload", j.UploadID)
		}
		var status string
		var current int
		var artistID, albumID int64
		if err := tx.QueryRowContext(ctx, `SELECT s.status, s.current_version, al.artist_id, al.id FROM songs s
			JOIN albums al ON al.id = s.album_id WHERE s.id = $1`+lock, j.SongID).Scan(&status, &current, &artistID, &albumID); err != nil {
			return notFound(err, "song", j.SongID)
		}
		now := s.nowMs()
		if status == StatusTakenDown || current >= j.Version {
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, song_id, version, state, max_attempts, run_at, created_at, updated_at)
				VALUES ('gc', $1, $2, 'queued', 10, $3, $3, $3)`, j.SongID, j.Version, now); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', stage = 'superseded', lease_owner = '', updated_at = $1 WHERE id = $2`, now, id)
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM renditions WHERE song_id = $1 AND version = $2`, j.SongID, j.Version); err != nil {
			return err
		}
		for _, r := range p.Renditions {
			if _, err := tx.ExecContext(ctx, `INSERT INTO renditions (song_id, version, format, bitrate_kbps, blob_key, size_bytes, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, j.SongID, j.Version, r.Format, r.BitrateKbps, r.BlobKey, r.SizeBytes, now); err != nil {
				return err
			}
		}
		f := Fold(up.Title)
		if _, err := tx.ExecContext(ctx, `UPDATE songs SET current_version = $1, status = 'ready', title = $2, genre = $3,
			track_number = $4, explicit = $5, duration_ms = $6, name_key = $7, search_text = $8, updated_at = $9 WHERE id = $10`,
			j.Version, up.Title, up.Genre, up.TrackNumber, up.Explicit, p.DurationMS, f.Key, f.Text, now, j.SongID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', stage = 'done', percent = 100, lease_owner = '',
			updated_at = $1 WHERE id = $2`, now, id); err != nil {
			return err
		}
		if current > 0 {
			old = current
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, song_id, version, state, max_attempts, run_at, created_at, updated_at)
				VALUES ('gc', $1, $2, 'queued', 10, $3, $4, $4)`, j.SongID, current, gcAt.UnixMilli(), now); err != nil {
				return err
			}
			if err := s.replicateInTx(ctx, tx, ReplicateCopy, j.SongID, artistID, albumID, j.Version); err != nil {
				return err
			}
			// Edges purge whole song folders (their generation counters
			// are per artist, album and song), which covers v{current}.
			return s.purgeInTx(ctx, tx, blobkey.SongFolder(artistID, albumID, j.SongID))
		}
		// Other regions get the version by replication (replication.go).
		return s.replicateInTx(ctx, tx, ReplicateCopy, j.SongID, artistID, albumID, j.Version)
	})
	if err != nil {
		return 0, fmt.Errorf("store: publish job %d: %w", id, err)
	}
	return old, nil
}

// CompleteGC finishes owner's GC job id once the version's objects are
// deleted: it drops the version's renditions, marks the job done and
// purges the song's folder at the edges, so cached copies of the version
// go too (an old URL then misses and finds nothing: 404).
func (s *JobQueue) CompleteGC(ctx context.Context, id int64, owner string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var songID int64
		var version int
		var state, leaseOwner string
		if err := tx.QueryRowContext(ctx, `SELECT song_id, version, state, lease_owner FROM jobs WHERE id = $1`, id).Scan(
			&songID, &version, &state, &leaseOwner); err != nil {
			return notFound(err, "job", id)
		}
		if state != JobRunning || leaseOwner != owner {
			return ErrLeaseLost
		}
		var artistID, albumID int64
		if err := tx.QueryRowContext(ctx, `SELECT al.artist_id, al.id FROM songs s JOIN albums al ON al.id = s.album_id WHERE s.id = $1`,
			songID).Scan(&artistID, &albumID); err != nil {
			return notFound(err, "song", songID)
		}
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, `DELETE FROM renditions WHERE song_id = $1 AND version = $2`, songID, version); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', stage = 'done', percent = 100, lease_owner = '',
			updated_at = $1 WHERE id = $2`, now, id); err != nil {
			return err
		}
		// Every other region deletes its copy too (replication.go).
		if err := s.replicateInTx(ctx, tx, ReplicateDelete, songID, artistID, albumID, version); err != nil {
			return err
		}
		return s.purgeInTx(ctx, tx, blobkey.SongFolder(artistID, albumID, songID))
	})
	if err != nil {
		return fmt.Errorf("store: complete GC job %d: %w", id, err)
	}
	return nil
}

// FinishJob marks owner's job id done without other changes (a GC job
// that found its version current again, say).
func (s *JobQueue) FinishJob(ctx context.Context, id int64, owner, stage string) error {
	return s.leased(ctx, s.w, id, owner, `UPDATE jobs SET state = 'done', stage = $1, lease_owner = '', updated_at = $2
		WHERE id = $3 AND lease_owner = $4 AND state = 'running'`, stage, s.nowMs(), id, owner)
}
