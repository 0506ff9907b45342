package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
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
// each song's all-time popularity, in one transaction. Tests and tools
// call it directly; play events (RecordEvents) feed the same rollup and
// popularity, a batch per statement.
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

// TrendingHalfLife is the age at which a play counts half. It is part of
// the schema (the triggers that fold plays into songs.trend_log).
const TrendingHalfLife = 24 * time.Hour

// trendEpochHour is the epoch of trend_log (2025-01-01T00:00Z in hours).
const trendEpochHour = 482136

// TrendingSong is a song with its trending score.
type TrendingSong struct {
	Song
	// Score is the song's plays at now, each weighted by
	// 0.5^(age/TrendingHalfLife) with age in whole hours.
	Score float64
}

// Trending returns the ready songs (of genre, when not "") with the
// highest time-decayed play counts, as folded from song_plays_hourly into
// songs.trend_log by the schema's triggers. It reads the trending index
// in order and stops at limit, whatever the number of plays. Ties go to
// the newer song.
func (s *Store) Trending(ctx context.Context, now time.Time, genre string, limit int) ([]TrendingSong, error) {
	var b queryBuilder
	where := "s.status = 'ready' AND s.trend_log > -1e8"
	if genre != "" {
		where += " AND s.genre = " + b.arg(genre)
	}
	q := fmt.Sprintf(`SELECT %s, s.trend_log%s WHERE %s ORDER BY s.trend_log DESC, s.id DESC LIMIT %s`,
		songColumns, songFrom, where, b.arg(limit))
	nowLog := float64(HourOf(now)-trendEpochHour) / TrendingHalfLife.Hours()
	out, err := queryAll(ctx, s.read, func(r scanner) (TrendingSong, error) {
		var trendLog float64
		so, err := scanSong(r, &trendLog)
		return TrendingSong{Song: so, Score: math.Exp2(trendLog - nowLog)}, err
	}, q, b.args...)
	if err == nil {
		err = withCredits(ctx, s.read, out, func(t *TrendingSong) *Song { return &t.Song })
	}
	if err != nil {
		return nil, fmt.Errorf("store: trending: %w", err)
	}
	return out, nil
}
