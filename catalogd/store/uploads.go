package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"riff/internal/blobkey"
)

// NewUpload describes an audio file an artist sent, after it was checked
// and probed, with the metadata it brings (form fields merged over its
// tags). The song's metadata becomes this when its version is published.
type NewUpload struct {
	ArtistID    int64  // the uploading artist: the album's artist
	SHA256      string // hex digest of the bytes
	Ext         string // of the original's blob key: flac, wav, mp3, m4a, ogg, aiff
	SizeBytes   int64
	Container   string
	Codec       string
	DurationMS  int64
	Bitrate     int // bits/s, 0 if unknown
	Title       string
	Genre       string
	TrackNumber int
	Explicit    bool
	// MaxAttempts bounds the packaging job's attempts (default 3).
	MaxAttempts int
	// Hold keeps the job from being claimed until ReleaseUpload: the
	// original is being stored. A job whose upload was never released
	// runs after Hold anyway and fails for want of its original.
	Hold time.Duration
	// Probe is what the upload check learnt about the file (catalogd
	// stores packager.Probe as JSON), handed to its packaging job so the
	// file is probed once. The store does not read it.
	Probe string
	// TraceParent is the W3C traceparent of the upload request's span
	// ("" when it was not traced): the packaging job continues that trace.
	TraceParent string
}

// Upload is a stored upload.
type Upload struct {
	ID          int64
	SongID      int64
	ArtistID    int64
	Version     int
	SHA256      string
	BlobKey     string // originals/{song}/{upload}.{ext}
	SizeBytes   int64
	Container   string
	Codec       string
	DurationMS  int64
	Bitrate     int
	Probe       string // as in NewUpload; "" for uploads stored before it was kept
	Title       string
	Genre       string
	TrackNumber int
	Explicit    bool
	CreatedAt   time.Time
}

// DuplicateUploadError: the artist uploaded the same bytes before, for
// song SongID (which is processing or ready). It matches ErrConflict.
type DuplicateUploadError struct{ SongID int64 }

func (e *DuplicateUploadError) Error() string {
	return fmt.Sprintf("the same file was uploaded for song %d", e.SongID)
}

func (e *DuplicateUploadError) Unwrap() error { return ErrConflict }

// CreateSongUpload adds a song (status processing) to an album with its
// first upload (version 1) and the packaging job, in one transaction. The
// error is a *DuplicateUploadError when the artist's processing or ready
// songs already hold the same bytes.
func (s *Store) CreateSongUpload(ctx context.Context, ns NewSong, nu NewUpload) (Song, Upload, error) {
	var up Upload
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkDuplicate(ctx, tx, nu); err != nil {
			return err
		}
		ns.Status, ns.CurrentVersion, ns.DurationMS = StatusProcessing, 0, 0
		id, err := s.createSong(ctx, tx, ns)
		if err != nil {
			return err
		}
		up, err = s.insertUpload(ctx, tx, id, 1, nu)
		return err
	})
	if err != nil {
		return Song{}, Upload{}, fmt.Errorf("store: upload: %w", err)
	}
	so, err := s.songByID(ctx, s.w, up.SongID)
	return so, up, err
}

// CreateReplacement adds an upload that publishes the next version of
// song songID, and its packaging job, in one transaction. The song keeps
// playing its current version until the new one is published.
func (s *Store) CreateReplacement(ctx context.Context, songID int64, nu NewUpload) (Upload, error) {
	var up Upload
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkDuplicate(ctx, tx, nu); err != nil {
			return err
		}
		var status string
		var version int
		if err := tx.QueryRowContext(ctx, `SELECT s.status, CASE WHEN v.m > s.current_version THEN v.m ELSE s.current_version END
			FROM songs s, (SELECT COALESCE(MAX(version), 0) AS m FROM uploads WHERE song_id = $1) v WHERE s.id = $1`, songID).Scan(&status, &version); err != nil {
			return notFound(err, "song", songID)
		}
		if status == StatusTakenDown {
			return fmt.Errorf("song %d is taken down: %w", songID, ErrConflict)
		}
		var err error
		up, err = s.insertUpload(ctx, tx, songID, version+1, nu)
		return err
	})
	if err != nil {
		return Upload{}, fmt.Errorf("store: replace audio of song %d: %w", songID, err)
	}
	return up, nil
}

// uploadLockSpace keys the PostgreSQL advisory locks that serialise one
// artist's uploads ("riffup" in ASCII, shifted; the artist id is added).
const uploadLockSpace = 0x7269666675700000

func (s *Store) checkDuplicate(ctx context.Context, tx *sql.Tx, nu NewUpload) error {
	if s.dialect == Postgres {
		// Two identical uploads at once must not both pass the check
		// (SQLite's single writer already serialises them).
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", uploadLockSpace+nu.ArtistID); err != nil {
			return err
		}
	}
	var songID int64
	err := tx.QueryRowContext(ctx, `SELECT u.song_id FROM uploads u JOIN songs s ON s.id = u.song_id
		WHERE u.artist_id = $1 AND u.sha256 = $2 AND s.status IN ('processing', 'ready') ORDER BY u.id LIMIT 1`,
		nu.ArtistID, nu.SHA256).Scan(&songID)
	switch {
	case err == nil:
		return &DuplicateUploadError{SongID: songID}
	case errors.Is(err, sql.ErrNoRows):
		return nil
	}
	return err
}

func (s *Store) insertUpload(ctx context.Context, tx *sql.Tx, songID int64, version int, nu NewUpload) (Upload, error) {
	now := s.nowMs()
	up := Upload{SongID: songID, ArtistID: nu.ArtistID, Version: version, SHA256: nu.SHA256, SizeBytes: nu.SizeBytes,
		Container: nu.Container, Codec: nu.Codec, DurationMS: nu.DurationMS, Bitrate: nu.Bitrate, Probe: nu.Probe, Title: nu.Title,
		Genre: nu.Genre, TrackNumber: nu.TrackNumber, Explicit: nu.Explicit, CreatedAt: fromMs(now)}
	if err := tx.QueryRowContext(ctx, `INSERT INTO uploads (song_id, artist_id, version, sha256, blob_key, size_bytes,
		container, codec, duration_ms, bitrate, title, genre, track_number, explicit, created_at, probe)
		VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id`,
		songID, nu.ArtistID, version, nu.SHA256, nu.SizeBytes, nu.Container, nu.Codec, nu.DurationMS, nu.Bitrate,
		nu.Title, nu.Genre, nu.TrackNumber, nu.Explicit, now, nu.Probe).Scan(&up.ID); err != nil {
		if isUnique(err) {
			return up, fmt.Errorf("song %d v%d is being uploaded already: %w", songID, version, ErrConflict)
		}
		return up, err
	}
	up.BlobKey = blobkey.Original(songID, up.ID, nu.Ext)
	if _, err := tx.ExecContext(ctx, `UPDATE uploads SET blob_key = $1 WHERE id = $2`, up.BlobKey, up.ID); err != nil {
		return up, err
	}
	attempts := nu.MaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, song_id, upload_id, version, state, max_attempts, run_at, created_at, updated_at, trace_parent)
		VALUES ('package', $1, $2, $3, 'queued', $4, $5, $6, $6, $7)`, songID, up.ID, version, attempts, now+nu.Hold.Milliseconds(), now, nu.TraceParent)
	return up, err
}

// ReleaseUpload makes the packaging job of upload id claimable now: its
// original is stored.
func (s *Store) ReleaseUpload(ctx context.Context, id int64) error {
	_, err := s.write.ExecContext(ctx, `UPDATE jobs SET run_at = $1, updated_at = $1 WHERE upload_id = $2 AND state = 'queued'`, s.nowMs(), id)
	if err != nil {
		return fmt.Errorf("store: release upload %d: %w", id, err)
	}
	return nil
}

// DiscardUpload forgets an upload whose original could not be stored: its
// job and row, and the song too when this was its first upload.
func (s *Store) DiscardUpload(ctx context.Context, up Upload) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE upload_id = $1`, up.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = $1`, up.ID); err != nil {
			return err
		}
		if up.Version == 1 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM jobs WHERE song_id = $1`, up.SongID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM songs WHERE id = $1 AND current_version = 0`, up.SongID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: discard upload %d: %w", up.ID, err)
	}
	return nil
}

// UploadByID returns upload id.
func (s *Store) UploadByID(ctx context.Context, id int64) (Upload, error) {
	var up Upload
	var created int64
	err := s.write.QueryRowContext(ctx, `SELECT id, song_id, artist_id, version, sha256, blob_key, size_bytes, container, codec,
		duration_ms, bitrate, title, genre, track_number, explicit, created_at, probe FROM uploads WHERE id = $1`, id).Scan(
		&up.ID, &up.SongID, &up.ArtistID, &up.Version, &up.SHA256, &up.BlobKey, &up.SizeBytes, &up.Container, &up.Codec,
		&up.DurationMS, &up.Bitrate, &up.Title, &up.Genre, &up.TrackNumber, &up.Explicit, &created, &up.Probe)
	if err != nil {
		return up, notFound(err, "upload", id)
	}
	up.CreatedAt = fromMs(created)
	return up, nil
}
