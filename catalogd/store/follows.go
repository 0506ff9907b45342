package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// FollowArtist makes userID follow artistID (idempotent) and counts the
// follower once. ErrNotFound when there is no such artist.
func (s *Store) FollowArtist(ctx context.Context, userID, artistID int64) error {
	return s.countedChange(ctx, "follow artist", func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM artists WHERE id = $1`, artistID).Scan(&one); err != nil {
			return notFound(err, "artist", artistID)
		}
		return nil
	}, `INSERT INTO artist_follows (user_id, artist_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, artist_id) DO NOTHING`, []any{userID, artistID, s.nowMs()},
		`UPDATE artists SET followers = followers + 1 WHERE id = $1`, artistID)
}

// UnfollowArtist makes userID stop following artistID (idempotent).
func (s *Store) UnfollowArtist(ctx context.Context, userID, artistID int64) error {
	return s.countedChange(ctx, "unfollow artist", nil,
		`DELETE FROM artist_follows WHERE user_id = $1 AND artist_id = $2`, []any{userID, artistID},
		`UPDATE artists SET followers = followers - 1 WHERE id = $1`, artistID)
}

// countedChange runs, in one transaction, check (when not nil), then
// change and, when it changed a row, count: a relation (a follow) and the
// count kept of it. what names the change in errors.
func (s *Store) countedChange(ctx context.Context, what string, check func(tx *sql.Tx) error,
	change string, changeArgs []any, count string, countArgs ...any) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if check != nil {
			if err := check(tx); err != nil {
				return err
			}
		}
		r, err := tx.ExecContext(ctx, change, changeArgs...)
		if err != nil {
			return err
		}
		if n, err := r.RowsAffected(); err != nil || n == 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, count, countArgs...)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// FollowedArtist is an artist a user follows and since when.
type FollowedArtist struct {
	Artist     Artist
	Stats      ArtistStats
	FollowedAt time.Time
}

// FollowedArtists returns a page of the artists userID follows, newest
// follow first, and how many there are.
func (s *Store) FollowedArtists(ctx context.Context, userID int64, limit, offset int) ([]FollowedArtist, int, error) {
	out, total, err := userPage(ctx, s.read, userID, limit, offset,
		`SELECT COUNT(*) FROM artist_follows WHERE user_id = $1`,
		`SELECT a.id, a.owner_user_id, a.name, a.bio, a.image_url, a.popularity, a.created_at, a.updated_at,
		a.followers, a.play_count, f.created_at
		FROM artist_follows f JOIN artists a ON a.id = f.artist_id
		WHERE f.user_id = $1 ORDER BY f.created_at DESC, f.artist_id DESC LIMIT $2 OFFSET $3`,
		func(r scanner) (FollowedArtist, error) {
			var st ArtistStats
			var followed int64
			a, err := scanArtist(r, &st.Followers, &st.Plays, &followed)
			return FollowedArtist{Artist: a, Stats: st, FollowedAt: fromMs(followed)}, err
		})
	if err != nil {
		return nil, 0, fmt.Errorf("store: artists followed by user %d: %w", userID, err)
	}
	return out, total, nil
}

// ArtistStats are an artist's follower and counted-play totals.
type ArtistStats struct {
	Followers int64
	Plays     int64
}

// ArtistStats returns the totals of artistID.
func (s *Store) ArtistStats(ctx context.Context, artistID int64) (ArtistStats, error) {
	var st ArtistStats
	err := s.read.QueryRowContext(ctx, `SELECT followers, play_count FROM artists WHERE id = $1`, artistID).Scan(&st.Followers, &st.Plays)
	if err != nil {
		return ArtistStats{}, notFound(err, "artist", artistID)
	}
	return st, nil
}
