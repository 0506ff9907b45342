package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Album types. Every song belongs to an album; a single is an album of type
// single.
const (
	AlbumTypeAlbum  = "album"
	AlbumTypeSingle = "single"
	AlbumTypeEP     = "ep"
)

// Album is a release of an artist.
type Album struct {
	ID          int64
	ArtistID    int64
	ArtistName  string
	Title       string
	Type        string
	ReleaseDate string // YYYY-MM-DD or ""
	CoverURL    string // a link the artist gave; CoverHash wins over it
	CoverHash   string // the cover's images (SetAlbumCover), "" when none
	Popularity  int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewAlbum is what CreateAlbum needs.
type NewAlbum struct {
	ArtistID    int64
	Title       string
	Type        string
	ReleaseDate string
	CoverURL    string
}

// CreateAlbum adds an album. The error wraps ErrNotFound when the artist
// does not exist.
func (s *Store) CreateAlbum(ctx context.Context, na NewAlbum) (Album, error) {
	now := s.nowMs()
	al := Album{ArtistID: na.ArtistID, Title: na.Title, Type: na.Type, ReleaseDate: na.ReleaseDate, CoverURL: na.CoverURL,
		CreatedAt: fromMs(now), UpdatedAt: fromMs(now)}
	f := Fold(na.Title)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT name FROM artists WHERE id = $1`, na.ArtistID).Scan(&al.ArtistName); err != nil {
			return notFound(err, "artist", na.ArtistID)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO albums
			(artist_id, title, type, release_date, cover_url, name_key, search_text, search_extra, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id`,
			na.ArtistID, na.Title, na.Type, na.ReleaseDate, na.CoverURL, f.Key, f.Text, Fold(al.ArtistName).Text, now).Scan(&al.ID)
	})
	if err != nil {
		return Album{}, fmt.Errorf("store: create album: %w", err)
	}
	return al, nil
}

const albumColumns = `al.id, al.artist_id, ar.name, al.title, al.type, al.release_date, al.cover_url, al.cover_hash, al.popularity, al.created_at, al.updated_at`

// scanAlbum reads albumColumns and then extra.
func scanAlbum(row scanner, extra ...any) (Album, error) {
	var al Album
	var created, updated int64
	err := row.Scan(append([]any{&al.ID, &al.ArtistID, &al.ArtistName, &al.Title, &al.Type, &al.ReleaseDate, &al.CoverURL, &al.CoverHash,
		&al.Popularity, &created, &updated}, extra...)...)
	al.CreatedAt, al.UpdatedAt = fromMs(created), fromMs(updated)
	return al, err
}

// AlbumByID returns the album with id.
func (s *Store) AlbumByID(ctx context.Context, id int64) (Album, error) {
	al, err := scanAlbum(s.read.QueryRowContext(ctx, `SELECT `+albumColumns+`
		FROM albums al JOIN artists ar ON ar.id = al.artist_id WHERE al.id = $1`, id))
	if err != nil {
		return Album{}, notFound(err, "album", id)
	}
	return al, nil
}

// AlbumUpdate holds the fields to change; nil fields stay as they are.
type AlbumUpdate struct {
	Title       *string
	Type        *string
	ReleaseDate *string
	CoverURL    *string
}

// UpdateAlbum changes album id. A new title is also written into the
// search text of the album's songs.
func (s *Store) UpdateAlbum(ctx context.Context, id int64, u AlbumUpdate) (Album, error) {
	var al Album
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var set setList
		if u.Title != nil {
			f := Fold(*u.Title)
			set.add("title", *u.Title)
			set.add("name_key", f.Key)
			set.add("search_text", f.Text)
		}
		if u.Type != nil {
			set.add("type", *u.Type)
		}
		if u.ReleaseDate != nil {
			set.add("release_date", *u.ReleaseDate)
		}
		if u.CoverURL != nil {
			set.add("cover_url", *u.CoverURL)
		}
		set.add("updated_at", s.nowMs())
		q := `UPDATE albums SET ` + set.String() + ` WHERE id = ` + set.arg(id)
		res, err := tx.ExecContext(ctx, q, set.args...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("album %d: %w", id, ErrNotFound)
		}
		if u.Title != nil {
			if err := refreshSongSearch(ctx, tx, `SELECT id FROM songs WHERE album_id = $1`, id); err != nil {
				return err
			}
		}
		al, err = scanAlbum(tx.QueryRowContext(ctx, `SELECT `+albumColumns+`
			FROM albums al JOIN artists ar ON ar.id = al.artist_id WHERE al.id = $1`, id))
		return err
	})
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return Album{}, fmt.Errorf("store: update album %d: %w", id, err)
	}
	return al, nil
}

// AlbumsByArtist returns the albums of artistID, newest release first.
func (s *Store) AlbumsByArtist(ctx context.Context, artistID int64) ([]Album, error) {
	out, err := queryAll(ctx, s.read, func(r scanner) (Album, error) { return scanAlbum(r) }, `SELECT `+albumColumns+`
		FROM albums al JOIN artists ar ON ar.id = al.artist_id
		WHERE al.artist_id = $1 ORDER BY al.release_date DESC, al.id DESC`, artistID)
	if err != nil {
		return nil, fmt.Errorf("store: albums of artist %d: %w", artistID, err)
	}
	return out, nil
}
