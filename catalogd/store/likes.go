package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// LikeSong records that userID likes songID (idempotent: liking again
// keeps the first time).
func (s *Store) LikeSong(ctx context.Context, userID, songID int64) error {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO song_likes (user_id, song_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, song_id) DO NOTHING`, userID, songID, s.nowMs()); err != nil {
		return fmt.Errorf("store: like song %d: %w", songID, err)
	}
	return nil
}

// UnlikeSong removes userID's like of songID (idempotent).
func (s *Store) UnlikeSong(ctx context.Context, userID, songID int64) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM song_likes WHERE user_id = $1 AND song_id = $2`, userID, songID); err != nil {
		return fmt.Errorf("store: unlike song %d: %w", songID, err)
	}
	return nil
}

// LikedSong is a song a user likes and when they liked it.
type LikedSong struct {
	Song    Song
	LikedAt time.Time
}

// LikedSongs returns a page of the songs userID likes, newest like first,
// and how many there are.
func (s *Store) LikedSongs(ctx context.Context, userID int64, limit, offset int) ([]LikedSong, int, error) {
	liked, total, err := userPage(ctx, s.read, userID, limit, offset,
		`SELECT COUNT(*) FROM song_likes WHERE user_id = $1`,
		`SELECT `+songColumns+`, l.created_at FROM song_likes l
		JOIN songs s ON s.id = l.song_id JOIN albums al ON al.id = s.album_id
		WHERE l.user_id = $1 ORDER BY l.created_at DESC, l.song_id DESC LIMIT $2 OFFSET $3`,
		func(r scanner) (LikedSong, error) {
			var at int64
			so, err := scanSong(r, &at)
			return LikedSong{Song: so, LikedAt: fromMs(at)}, err
		})
	if err == nil {
		err = withCredits(ctx, s.read, liked, func(l *LikedSong) *Song { return &l.Song })
	}
	if err != nil {
		return nil, 0, fmt.Errorf("store: liked songs of user %d: %w", userID, err)
	}
	return liked, total, nil
}

type timedSong struct {
	song Song
	at   time.Time
}

// scanTimedSongs reads rows of songColumns and one time in unix
// milliseconds, closes them and loads the songs' credits.
func scanTimedSongs(ctx context.Context, db querier, rows *sql.Rows) ([]timedSong, error) {
	out, err := scanAll(rows, func(r scanner) (timedSong, error) {
		var at int64
		so, err := scanSong(r, &at)
		return timedSong{so, fromMs(at)}, err
	})
	if err != nil {
		return nil, err
	}
	if err := withCredits(ctx, db, out, func(ts *timedSong) *Song { return &ts.song }); err != nil {
		return nil, err
	}
	return out, nil
}

// LikedAmong returns which of songIDs userID likes.
func (s *Store) LikedAmong(ctx context.Context, userID int64, songIDs []int64) (map[int64]bool, error) {
	liked := make(map[int64]bool)
	if len(songIDs) == 0 || userID == 0 {
		return liked, nil
	}
	args := []any{userID}
	for _, id := range songIDs {
		args = append(args, id)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT song_id FROM song_likes WHERE user_id = $1 AND song_id IN (`+placeholders(2, len(songIDs))+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: likes of user %d: %w", userID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: likes of user %d: %w", userID, err)
		}
		liked[id] = true
	}
	return liked, rows.Err()
}
