package store

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"riff/internal/blobkey"
)

// Song statuses. Only ready songs are listed, searched and played.
const (
	StatusProcessing = "processing"
	StatusReady      = "ready"
	StatusFailed     = "failed"
	StatusTakenDown  = "taken_down"
)

// Credit roles. A song's first credit is its primary artist.
const (
	RolePrimary  = "primary"
	RoleFeatured = "featured"
	RoleProducer = "producer"
	RoleComposer = "composer"
	RoleRemixer  = "remixer"
)

// Credit is one artist credited on a song.
type Credit struct {
	ArtistID int64
	Name     string
	Role     string
}

// Song is one track of an album with its credits.
type Song struct {
	ID              int64
	AlbumID         int64
	AlbumTitle      string
	AlbumCoverURL   string
	AlbumCoverHash  string
	AlbumArtistID   int64
	PrimaryArtistID int64
	Credits         []Credit // in credit order; Credits[0] is the primary artist
	Title           string
	TrackNumber     int
	DurationMS      int64
	Genre           string
	Explicit        bool
	Status          string
	CurrentVersion  int
	Popularity      int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// NewCredit names an artist credited on a new song.
type NewCredit struct {
	ArtistID int64
	Role     string
}

// NewSong is what CreateSong needs. With no Credits the album's artist is
// the primary artist; otherwise Credits[0] must have RolePrimary.
type NewSong struct {
	AlbumID        int64
	Title          string
	TrackNumber    int
	DurationMS     int64
	Genre          string
	Explicit       bool
	Status         string // default StatusProcessing
	CurrentVersion int
	Credits        []NewCredit
}

// CreateSong adds a song to an album. The error wraps ErrNotFound when the
// album or a credited artist does not exist.
func (s *Store) CreateSong(ctx context.Context, ns NewSong) (Song, error) {
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = s.createSong(ctx, tx, ns)
		return err
	})
	if err != nil {
		return Song{}, fmt.Errorf("store: create song: %w", err)
	}
	return s.songByID(ctx, s.w, id)
}

func (s *Store) createSong(ctx context.Context, tx *sql.Tx, ns NewSong) (int64, error) {
	if ns.Status == "" {
		ns.Status = StatusProcessing
	}
	var albumArtist int64
	var albumTitle string
	if err := tx.QueryRowContext(ctx, `SELECT artist_id, title FROM albums WHERE id = $1`, ns.AlbumID).Scan(&albumArtist, &albumTitle); err != nil {
		return 0, notFound(err, "album", ns.AlbumID)
	}
	credits := ns.Credits
	if len(credits) == 0 {
		credits = []NewCredit{{ArtistID: albumArtist, Role: RolePrimary}}
	}
	if credits[0].Role != RolePrimary {
		return 0, fmt.Errorf("first credit has role %q, want %q", credits[0].Role, RolePrimary)
	}
	if credits[0].ArtistID != albumArtist {
		return 0, fmt.Errorf("primary artist %d is not the album's artist %d", credits[0].ArtistID, albumArtist)
	}
	names := make([]string, len(credits))
	for i, c := range credits {
		if err := tx.QueryRowContext(ctx, `SELECT name FROM artists WHERE id = $1`, c.ArtistID).Scan(&names[i]); err != nil {
			return 0, notFound(err, "artist", c.ArtistID)
		}
	}
	now := s.nowMs()
	f := Fold(ns.Title)
	var id int64
	if err := tx.QueryRowContext(ctx, `INSERT INTO songs
		(album_id, primary_artist_id, title, track_number, duration_ms, genre, explicit, status, current_version,
		 name_key, search_text, search_extra, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id`,
		ns.AlbumID, credits[0].ArtistID, ns.Title, ns.TrackNumber, ns.DurationMS, ns.Genre, ns.Explicit, ns.Status,
		ns.CurrentVersion, f.Key, f.Text, songExtra(names, albumTitle), now).Scan(&id); err != nil {
		return 0, err
	}
	for i, c := range credits {
		if _, err := tx.ExecContext(ctx, `INSERT INTO song_artists (song_id, artist_id, role, position) VALUES ($1, $2, $3, $4)`,
			id, c.ArtistID, c.Role, i); err != nil {
			if isUnique(err) {
				return 0, fmt.Errorf("artist %d credited twice as %s: %w", c.ArtistID, c.Role, ErrConflict)
			}
			return 0, err
		}
	}
	return id, nil
}

// songExtra is the search text a song is also found by: its credited
// artists' names (each once) and its album title.
func songExtra(artistNames []string, albumTitle string) string {
	var uniq []string
	for _, n := range artistNames {
		if !slices.Contains(uniq, n) {
			uniq = append(uniq, n)
		}
	}
	return FoldJoin(append(uniq, albumTitle)...)
}

// songColumns are the columns scanSong reads, from songFrom.
const (
	songColumns = `s.id, s.album_id, al.title, al.cover_url, al.cover_hash, al.artist_id, s.primary_artist_id, s.title,
	s.track_number, s.duration_ms, s.genre, s.explicit, s.status, s.current_version, s.popularity, s.created_at, s.updated_at`
	songFrom = ` FROM songs s JOIN albums al ON al.id = s.album_id`
	// songSelect selects songs for scanSong; callers add WHERE and ORDER BY.
	songSelect = `SELECT ` + songColumns + songFrom
)

func scanSong(row scanner, extra ...any) (Song, error) {
	var so Song
	var created, updated int64
	dest := append([]any{&so.ID, &so.AlbumID, &so.AlbumTitle, &so.AlbumCoverURL, &so.AlbumCoverHash, &so.AlbumArtistID, &so.PrimaryArtistID,
		&so.Title, &so.TrackNumber, &so.DurationMS, &so.Genre, &so.Explicit, &so.Status, &so.CurrentVersion,
		&so.Popularity, &created, &updated}, extra...)
	err := row.Scan(dest...)
	so.CreatedAt, so.UpdatedAt = fromMs(created), fromMs(updated)
	return so, err
}

// scanner is what *sql.Row and *sql.Rows share for scanning.
type scanner = interface{ Scan(...any) error }

// queryAll runs query on db and returns its rows, each read by scan.
func queryAll[T any](ctx context.Context, db querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return scanAll(rows, scan)
}

// userPage returns a page of a user's list: the rows of query (arguments
// userID, limit and offset) read by scan, and the list's length, what
// count (argument userID) counts.
func userPage[T any](ctx context.Context, db querier, userID int64, limit, offset int, count, query string,
	scan func(scanner) (T, error)) ([]T, int, error) {
	var total int
	if err := db.QueryRowContext(ctx, count, userID).Scan(&total); err != nil {
		return nil, 0, err
	}
	out, err := queryAll(ctx, db, scan, query, userID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	return out, total, nil
}

// scanAll reads every row of rows with scan and closes them.
func scanAll[T any](rows *sql.Rows, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// querier is what *sql.DB and *sql.Tx share for queries.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SongByID returns the song with id, any status, with its credits.
func (s *Store) SongByID(ctx context.Context, id int64) (Song, error) {
	return s.songByID(ctx, s.read, id)
}

func (s *Store) songByID(ctx context.Context, db querier, id int64) (Song, error) {
	// One statement: the song with one row per credit.
	rows, err := db.QueryContext(ctx, `SELECT `+songColumns+`, COALESCE(sa.artist_id, 0), COALESCE(a.name, ''), COALESCE(sa.role, '')`+songFrom+`
		LEFT JOIN song_artists sa ON sa.song_id = s.id LEFT JOIN artists a ON a.id = sa.artist_id
		WHERE s.id = $1 ORDER BY sa.position`, id)
	if err != nil {
		return Song{}, fmt.Errorf("store: song %d: %w", id, err)
	}
	defer rows.Close()
	var so Song
	found := false
	for rows.Next() {
		var c Credit
		row, err := scanSong(rows, &c.ArtistID, &c.Name, &c.Role)
		if err != nil {
			return Song{}, fmt.Errorf("store: song %d: %w", id, err)
		}
		if !found {
			so, found = row, true
		}
		if c.ArtistID != 0 {
			so.Credits = append(so.Credits, c)
		}
	}
	if err := rows.Err(); err != nil {
		return Song{}, fmt.Errorf("store: song %d: %w", id, err)
	}
	if !found {
		return Song{}, fmt.Errorf("store: song %d: %w", id, ErrNotFound)
	}
	return so, nil
}

// loadCredits fills in the Credits of songs with one query.
func loadCredits(ctx context.Context, db querier, songs []Song) error {
	if len(songs) == 0 {
		return nil
	}
	ids := make([]any, len(songs))
	index := make(map[int64][]int, len(songs))
	for i, so := range songs {
		ids[i] = so.ID
		index[so.ID] = append(index[so.ID], i)
	}
	rows, err := db.QueryContext(ctx, `SELECT sa.song_id, sa.artist_id, a.name, sa.role
		FROM song_artists sa JOIN artists a ON a.id = sa.artist_id
		WHERE sa.song_id IN (`+placeholders(1, len(ids))+`) ORDER BY sa.song_id, sa.position`, ids...) // one statement per list length
	if err != nil {
		return fmt.Errorf("credits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var songID int64
		var c Credit
		if err := rows.Scan(&songID, &c.ArtistID, &c.Name, &c.Role); err != nil {
			return fmt.Errorf("credits: %w", err)
		}
		for _, i := range index[songID] {
			songs[i].Credits = append(songs[i].Credits, c)
		}
	}
	return rows.Err()
}

// withCredits loads the credits of the songs of items: song points at an
// item's song.
func withCredits[T any](ctx context.Context, db querier, items []T, song func(*T) *Song) error {
	songs := make([]Song, len(items))
	for i := range items {
		songs[i] = *song(&items[i])
	}
	if err := loadCredits(ctx, db, songs); err != nil {
		return err
	}
	for i := range items {
		*song(&items[i]) = songs[i]
	}
	return nil
}

// querySongs runs a songSelect query and loads the credits of the result.
func (s *Store) querySongs(ctx context.Context, q string, args ...any) ([]Song, error) {
	songs, err := queryAll(ctx, s.read, func(r scanner) (Song, error) { return scanSong(r) }, q, args...)
	if err != nil {
		return nil, err
	}
	return songs, loadCredits(ctx, s.read, songs)
}

// AlbumSongs returns the songs of an album in track order; with readyOnly,
// only songs that can be played.
func (s *Store) AlbumSongs(ctx context.Context, albumID int64, readyOnly bool) ([]Song, error) {
	q := songSelect + ` WHERE s.album_id = $1`
	if readyOnly {
		q += ` AND s.status = 'ready'`
	}
	songs, err := s.querySongs(ctx, q+` ORDER BY s.track_number, s.id`, albumID)
	if err != nil {
		return nil, fmt.Errorf("store: songs of album %d: %w", albumID, err)
	}
	return songs, nil
}

// ArtistSongs returns a page of the ready songs artistID is credited on
// (any role), most popular first (rank_key order), and how many there are
// in all. Songs where the artist is primary are read in order from an
// index; other credits (usually few) are sorted and merged in.
func (s *Store) ArtistSongs(ctx context.Context, artistID int64, limit, offset int) ([]Song, int, error) {
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM songs WHERE primary_artist_id = $1 AND status = 'ready') +
		(SELECT COUNT(DISTINCT sa.song_id) FROM song_artists sa JOIN songs s ON s.id = sa.song_id
		 WHERE sa.artist_id = $1 AND s.primary_artist_id <> $1 AND s.status = 'ready')`, artistID).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: songs of artist %d: %w", artistID, err)
	}
	if total == 0 || offset >= total {
		return nil, total, nil
	}
	need := offset + limit
	primary, err := queryColumn[int64](ctx, s.read, `SELECT rank_key FROM songs WHERE primary_artist_id = $1 AND status = 'ready'
		ORDER BY rank_key DESC LIMIT $2`, artistID, need)
	if err != nil {
		return nil, 0, fmt.Errorf("store: songs of artist %d: %w", artistID, err)
	}
	other, err := queryColumn[int64](ctx, s.read, `SELECT DISTINCT s.rank_key FROM song_artists sa JOIN songs s ON s.id = sa.song_id
		WHERE sa.artist_id = $1 AND s.primary_artist_id <> $1 AND s.status = 'ready' ORDER BY s.rank_key DESC LIMIT $2`, artistID, need)
	if err != nil {
		return nil, 0, fmt.Errorf("store: songs of artist %d: %w", artistID, err)
	}
	keys := make([]int64, 0, len(primary)+len(other))
	for len(primary) > 0 || len(other) > 0 {
		if len(other) == 0 || (len(primary) > 0 && primary[0] > other[0]) {
			keys, primary = append(keys, primary[0]), primary[1:]
		} else {
			keys, other = append(keys, other[0]), other[1:]
		}
	}
	if offset >= len(keys) {
		return nil, total, nil
	}
	songs, err := loadByRank(ctx, s, songSearch, keys[offset:min(len(keys), need)], func(r *sql.Rows) (Song, int64, error) {
		so, err := scanSong(r)
		return so, so.ID, err
	})
	if err == nil {
		err = loadCredits(ctx, s.read, songs)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: songs of artist %d: %w", artistID, err)
	}
	return songs, total, nil
}

// SetSongStatus sets the status of song id.
func (s *Store) SetSongStatus(ctx context.Context, id int64, status string) error {
	return s.execOne(ctx, s.w, "song", id, `UPDATE songs SET status = $1, updated_at = $2 WHERE id = $3`, status, s.nowMs(), id)
}

// Rendition is one packaged media file of a song version.
type Rendition struct {
	Format      string // "aac" or "ogg"
	BitrateKbps int    // 64, 128 or 320
	BlobKey     string
	SizeBytes   int64
}

// PublishVersion records the renditions of version of song id, makes it
// the current version and marks the song ready, in one transaction: a
// playback URL minted afterwards names only the new version.
func (s *Store) PublishVersion(ctx context.Context, id int64, version int, rs []Rendition) error {
	now := s.nowMs()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, r := range rs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO renditions (song_id, version, format, bitrate_kbps, blob_key, size_bytes, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, id, version, r.Format, r.BitrateKbps, r.BlobKey, r.SizeBytes, now); err != nil {
				if isUnique(err) {
					return fmt.Errorf("rendition %s/%d of v%d exists: %w", r.Format, r.BitrateKbps, version, ErrConflict)
				}
				return err
			}
		}
		if err := s.execOne(ctx, tx, "song", id, `UPDATE songs SET current_version = $1, status = 'ready', updated_at = $2 WHERE id = $3`,
			version, now, id); err != nil {
			return err
		}
		var artistID, albumID int64
		if err := tx.QueryRowContext(ctx, `SELECT al.artist_id, al.id FROM songs s JOIN albums al ON al.id = s.album_id WHERE s.id = $1`,
			id).Scan(&artistID, &albumID); err != nil {
			return err
		}
		return s.replicateInTx(ctx, tx, ReplicateCopy, id, artistID, albumID, version) // replication.go
	})
	if err != nil {
		return fmt.Errorf("store: publish song %d v%d: %w", id, version, err)
	}
	return nil
}

// Renditions returns the renditions of version of song id.
func (s *Store) Renditions(ctx context.Context, id int64, version int) ([]Rendition, error) {
	rs, err := queryAll(ctx, s.read, func(row scanner) (Rendition, error) {
		var r Rendition
		err := row.Scan(&r.Format, &r.BitrateKbps, &r.BlobKey, &r.SizeBytes)
		return r, err
	}, `SELECT format, bitrate_kbps, blob_key, size_bytes FROM renditions
		WHERE song_id = $1 AND version = $2 ORDER BY format, bitrate_kbps`, id, version)
	if err != nil {
		return nil, fmt.Errorf("store: renditions of song %d: %w", id, err)
	}
	return rs, nil
}

// SampleSongIDs returns up to n ids of ready songs drawn at random
// (reproducibly for a seed): what load generators request. It probes
// random ids by primary key rather than scanning the table.
func (s *Store) SampleSongIDs(ctx context.Context, n int, seed uint64) ([]int64, error) {
	var maxID int64
	if err := s.read.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM songs`).Scan(&maxID); err != nil {
		return nil, fmt.Errorf("store: sample songs: %w", err)
	}
	if maxID == 0 {
		return nil, nil
	}
	r := rand.New(rand.NewPCG(seed, seed))
	seen := map[int64]bool{}
	var out []int64
	for tries := 0; len(out) < n && tries < 4*n/100+4; tries++ {
		probe := make([]any, 100)
		for i := range probe {
			probe[i] = 1 + r.Int64N(maxID)
		}
		rows, err := s.read.QueryContext(ctx, `SELECT id FROM songs WHERE id IN (`+placeholders(1, len(probe))+`) AND status = 'ready'`, probe...)
		if err != nil {
			return nil, fmt.Errorf("store: sample songs: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: sample songs: %w", err)
			}
			if !seen[id] && len(out) < n {
				seen[id] = true
				out = append(out, id)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: sample songs: %w", err)
		}
	}
	return out, nil
}

// TakeDown takes song id down in one transaction: no more playback URLs
// (status taken_down), unfinished package jobs cancelled, the current
// version queued for collection at gcAt, and the song's whole folder
// purged at the edges.
func (s *Store) TakeDown(ctx context.Context, id int64, gcAt time.Time) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var current int
		var artistID, albumID int64
		var status string
		if err := tx.QueryRowContext(ctx, `SELECT s.status, s.current_version, al.artist_id, al.id FROM songs s
			JOIN albums al ON al.id = s.album_id WHERE s.id = $1`, id).Scan(&status, &current, &artistID, &albumID); err != nil {
			return notFound(err, "song", id)
		}
		if status == StatusTakenDown {
			return nil
		}
		now := s.nowMs()
		if _, err := tx.ExecContext(ctx, `UPDATE songs SET status = 'taken_down', updated_at = $1 WHERE id = $2`, now, id); err != nil {
			return err
		}
		// Versions being packaged are collected too (their worker finds its
		// job cancelled and stops).
		if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, song_id, version, state, max_attempts, run_at, created_at, updated_at)
			SELECT 'gc', song_id, version, 'queued', 10, $1, $2, $2 FROM jobs
			WHERE song_id = $3 AND kind = 'package' AND state IN ('queued', 'running')`, gcAt.UnixMilli(), now, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'failed', last_error = 'the song was taken down', lease_owner = '',
			updated_at = $1 WHERE song_id = $2 AND kind = 'package' AND state IN ('queued', 'running')`, now, id); err != nil {
			return err
		}
		if current > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO jobs (kind, song_id, version, state, max_attempts, run_at, created_at, updated_at)
				VALUES ('gc', $1, $2, 'queued', 10, $3, $4, $4)`, id, current, gcAt.UnixMilli(), now); err != nil {
				return err
			}
		}
		return s.purgeInTx(ctx, tx, blobkey.SongFolder(artistID, albumID, id))
	})
	if err != nil {
		return fmt.Errorf("store: take down song %d: %w", id, err)
	}
	return nil
}
