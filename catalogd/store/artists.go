package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Artist is a performer or band. A user owns it (the account that manages
// it); only the owner may change it.
type Artist struct {
	ID          int64
	OwnerUserID int64
	Name        string
	Bio         string
	ImageURL    string
	Popularity  int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// NewArtist is what CreateArtist needs.
type NewArtist struct {
	Name     string
	Bio      string
	ImageURL string
}

// CreateArtist adds an artist owned by ownerID and makes a listener owner
// an artist (admins stay admins). The error wraps ErrConflict when another
// artist's name has the same NameKey.
func (s *Store) CreateArtist(ctx context.Context, ownerID int64, na NewArtist) (Artist, error) {
	now := s.nowMs()
	a := Artist{OwnerUserID: ownerID, Name: na.Name, Bio: na.Bio, ImageURL: na.ImageURL, CreatedAt: fromMs(now), UpdatedAt: fromMs(now)}
	f := Fold(na.Name)
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.execOne(ctx, tx, "user", ownerID, `UPDATE users SET role = CASE WHEN role = 'listener' THEN 'artist' ELSE role END,
			updated_at = $1 WHERE id = $2`, now, ownerID); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO artists (owner_user_id, name, bio, image_url, name_key, search_text, name_unique, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id`,
			ownerID, na.Name, na.Bio, na.ImageURL, f.Key, f.Text, NameKey(na.Name), now).Scan(&a.ID)
		if isUnique(err) {
			return fmt.Errorf("name %q: %w", na.Name, ErrConflict)
		}
		return err
	})
	if err != nil {
		return Artist{}, fmt.Errorf("store: create artist: %w", err)
	}
	return a, nil
}

const artistColumns = `id, owner_user_id, name, bio, image_url, popularity, created_at, updated_at`

// scanArtist reads artistColumns and then extra.
func scanArtist(row scanner, extra ...any) (Artist, error) {
	var a Artist
	var created, updated int64
	err := row.Scan(append([]any{&a.ID, &a.OwnerUserID, &a.Name, &a.Bio, &a.ImageURL, &a.Popularity, &created, &updated}, extra...)...)
	a.CreatedAt, a.UpdatedAt = fromMs(created), fromMs(updated)
	return a, err
}

// ArtistByID returns the artist with id.
func (s *Store) ArtistByID(ctx context.Context, id int64) (Artist, error) {
	a, err := scanArtist(s.read.QueryRowContext(ctx, `SELECT `+artistColumns+` FROM artists WHERE id = $1`, id))
	if err != nil {
		return Artist{}, notFound(err, "artist", id)
	}
	return a, nil
}

// ArtistsOwnedBy returns the artists userID owns, oldest first.
func (s *Store) ArtistsOwnedBy(ctx context.Context, userID int64) ([]Artist, error) {
	as, err := queryAll(ctx, s.read, func(r scanner) (Artist, error) { return scanArtist(r) },
		`SELECT `+artistColumns+` FROM artists WHERE owner_user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: artists of user %d: %w", userID, err)
	}
	return as, nil
}

// ArtistUpdate holds the fields to change; nil fields stay as they are.
type ArtistUpdate struct {
	Name     *string
	Bio      *string
	ImageURL *string
}

// UpdateArtist changes artist id. A new name is also written into the
// search text of the artist's albums and credited songs; the error wraps
// ErrConflict when another artist's name has its NameKey.
func (s *Store) UpdateArtist(ctx context.Context, id int64, u ArtistUpdate) (Artist, error) {
	var a Artist
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var set setList
		if u.Name != nil {
			f := Fold(*u.Name)
			set.add("name", *u.Name)
			set.add("name_key", f.Key)
			set.add("search_text", f.Text)
			set.add("name_unique", NameKey(*u.Name))
		}
		if u.Bio != nil {
			set.add("bio", *u.Bio)
		}
		if u.ImageURL != nil {
			set.add("image_url", *u.ImageURL)
		}
		set.add("updated_at", s.nowMs())
		q := `UPDATE artists SET ` + set.String() + ` WHERE id = ` + set.arg(id) + ` RETURNING ` + artistColumns
		var err error
		a, err = scanArtist(tx.QueryRowContext(ctx, q, set.args...))
		if isUnique(err) {
			return fmt.Errorf("name %q: %w", *u.Name, ErrConflict)
		}
		if err != nil {
			return notFound(err, "artist", id)
		}
		if u.Name == nil {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE albums SET search_extra = $1 WHERE artist_id = $2`, Fold(a.Name).Text, id); err != nil {
			return err
		}
		return refreshSongSearch(ctx, tx, `SELECT song_id FROM song_artists WHERE artist_id = $1`, id)
	})
	if err != nil {
		return Artist{}, fmt.Errorf("store: update artist %d: %w", id, err)
	}
	return a, nil
}

// refreshSongSearch recomputes search_extra (credited artist names and
// album title) of the songs selected by idQuery.
func refreshSongSearch(ctx context.Context, tx *sql.Tx, idQuery string, args ...any) error {
	rows, err := tx.QueryContext(ctx, `SELECT s.id, al.title, a.name
		FROM songs s JOIN albums al ON al.id = s.album_id
		JOIN song_artists sa ON sa.song_id = s.id JOIN artists a ON a.id = sa.artist_id
		WHERE s.id IN (`+idQuery+`) ORDER BY s.id, sa.position`, args...)
	if err != nil {
		return err
	}
	type extra struct {
		album string
		names []string
	}
	var order []int64
	extras := map[int64]*extra{}
	for rows.Next() {
		var id int64
		var album, name string
		if err := rows.Scan(&id, &album, &name); err != nil {
			rows.Close()
			return err
		}
		e := extras[id]
		if e == nil {
			e = &extra{album: album}
			extras[id] = e
			order = append(order, id)
		}
		e.names = append(e.names, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range order {
		e := extras[id]
		if _, err := tx.ExecContext(ctx, `UPDATE songs SET search_extra = $1 WHERE id = $2`,
			songExtra(e.names, e.album), id); err != nil {
			return err
		}
	}
	return nil
}
