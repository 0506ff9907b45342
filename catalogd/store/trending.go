package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// PlayCount is a number of plays of a song within one hour.
type PlayCount struct {
	SongID int64
	Hour   time.Time // truncated to the hour
	Plays  int64
}

// HourOf returns the rollup bucket of t: hours since the unix epoch.
func HourOf(t time.Time) int64 { return t.Unix() / 3600 }

// RecordPlays adds plays into the hourly rollup (song_plays_hourly) and to
// each song's all-time popularity, in one transaction. Issue 6's play
// events call it in batches; tests and the seed command call it directly.
func (s *Store) RecordPlays(ctx context.Context, counts []PlayCount) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range counts {
			if c.Plays <= 0 {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO song_plays_hourly (song_id, hour, plays) VALUES ($1, $2, $3)
				ON CONFLICT (song_id, hour) DO UPDATE SET plays = song_plays_hourly.plays + excluded.plays`,
				c.SongID, HourOf(c.Hour), c.Plays); err != nil {
				return err
			}
			if err := s.execOne(ctx, tx, "song", c.SongID, `UPDATE songs SET popularity = popularity + $1 WHERE id = $2`, c.Plays, c.SongID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: record plays: %w", err)
	}
	return nil
}

// TrendingOptions shape the trending score.
type TrendingOptions struct {
	// Window is how far back plays count (default 7 days).
	Window time.Duration
	// HalfLife is the age at which a play counts half (default 24 hours).
	HalfLife time.Duration
}

// TrendingSong is a song with its trending score.
type TrendingSong struct {
	Song
	Score float64
}

// Trending returns the ready songs (of genre, when not "") with the most
// plays in the window before now, each play weighted by
// 0.5^(age/half-life) where age is in whole hours. Ties go to the lower id.
func (s *Store) Trending(ctx context.Context, now time.Time, genre string, limit int, opts TrendingOptions) ([]TrendingSong, error) {
	if opts.Window <= 0 {
		opts.Window = 7 * 24 * time.Hour
	}
	if opts.HalfLife <= 0 {
		opts.HalfLife = 24 * time.Hour
	}
	nowHour := HourOf(now)
	from := nowHour - int64(opts.Window/time.Hour)
	var b queryBuilder
	genreCond := ""
	if genre != "" {
		genreCond = " AND g.genre = " + b.arg(genre)
	}
	// The window is read through the (hour, song_id, plays) index; the score
	// is summed per song, then the top songs are joined for display.
	q := fmt.Sprintf(`WITH scores AS (
			SELECT p.song_id, SUM(p.plays * POWER(0.5, CAST(%[1]s - p.hour AS DOUBLE PRECISION) / %[2]s)) AS score
			FROM song_plays_hourly p JOIN songs g ON g.id = p.song_id
			WHERE p.hour > %[3]s AND p.hour <= %[1]s AND g.status = 'ready'%[4]s
			GROUP BY p.song_id
			ORDER BY score DESC, p.song_id
			LIMIT %[5]s)
		SELECT %[6]s, sc.score%[7]s JOIN scores sc ON sc.song_id = s.id ORDER BY sc.score DESC, s.id`,
		b.arg(nowHour), b.arg(opts.HalfLife.Hours()), b.arg(from), genreCond, b.arg(limit),
		songColumns, songFrom)
	rows, err := s.read.QueryContext(ctx, q, b.args...)
	if err != nil {
		return nil, fmt.Errorf("store: trending: %w", err)
	}
	var out []TrendingSong
	for rows.Next() {
		var score float64
		so, err := scanSong(rows, &score)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: trending: %w", err)
		}
		out = append(out, TrendingSong{Song: so, Score: score})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: trending: %w", err)
	}
	songs := make([]Song, len(out))
	for i := range out {
		songs[i] = out[i].Song
	}
	if err := loadCredits(ctx, s.read, songs); err != nil {
		return nil, fmt.Errorf("store: trending: %w", err)
	}
	for i := range out {
		out[i].Song = songs[i]
	}
	return out, nil
}
