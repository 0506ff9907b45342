package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Play event rules.
const (
	// MaxEventBatch is the most events one RecordEvents call takes.
	MaxEventBatch = 500
	// PlayThreshold is how long a play must last to count (or the whole
	// song, when it is shorter).
	PlayThreshold = 30 * time.Second
)

// Event sources.
const (
	SourceSearch   = "search"
	SourcePlaylist = "playlist"
	SourceAlbum    = "album"
	SourceArtist   = "artist"
	SourceOther    = "other"
)

// PlayEvent is one play a player reports.
type PlayEvent struct {
	// EventID is the client's id of the event; a user's event is recorded
	// once however often it is sent.
	EventID   string
	SongID    int64
	StartedAt time.Time
	MSPlayed  int64
	Source    string
	Completed bool
}

// Counts reports whether a play of msPlayed of a song durationMS long
// counts: PlayThreshold, or the whole song when it is shorter (a duration
// of 0 is unknown: the threshold applies).
func Counts(durationMS, msPlayed int64) bool {
	need := PlayThreshold.Milliseconds()
	if durationMS > 0 {
		need = min(need, durationMS)
	}
	return msPlayed >= need
}

// IngestResult says what a batch did.
type IngestResult struct {
	// Recorded events are new; Duplicates were recorded before (or twice in
	// the batch) and changed nothing.
	Recorded, Duplicates int
	// Counted of the recorded events are plays (see Counts).
	Counted int
}

// playKey and dayKey group rollup increments.
type playKey struct{ song, bucket int64 }

type dayTotals struct{ plays, listeners, ms int64 }

// RecordEvents records a batch of userID's play events in one transaction
// with a handful of statements whatever the batch size: the events (once
// per event id), then, for the new ones, the per-song daily rollup
// (plays, listeners, ms played), the hourly rollup that drives trending,
// songs' popularity and artists' play counts. A play's hour and day are
// those of its start, or of now when a player's clock runs ahead. Unknown
// song ids fail the batch with *UnknownSongsError; nothing is recorded.
func (s *Store) RecordEvents(ctx context.Context, userID int64, evs []PlayEvent) (IngestResult, error) {
	var res IngestResult
	if len(evs) == 0 {
		return res, nil
	}
	if len(evs) > MaxEventBatch {
		return res, fmt.Errorf("store: record events: %d events, at most %d: %w", len(evs), MaxEventBatch, ErrOutOfRange)
	}
	// First of each event id only.
	seen := make(map[string]bool, len(evs))
	uniq := make([]PlayEvent, 0, len(evs))
	for _, e := range evs {
		if !seen[e.EventID] {
			seen[e.EventID] = true
			uniq = append(uniq, e)
		}
	}
	res.Duplicates = len(evs) - len(uniq)
	now := s.now()
	nowMs := now.UnixMilli()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		songs, err := songFacts(ctx, tx, uniq)
		if err != nil {
			return err
		}
		var q strings.Builder
		args := make([]any, 0, 9*len(uniq))
		q.WriteString(`INSERT INTO play_events (user_id, event_id, song_id, started_at, ms_played, source, completed, counted, received_at) VALUES `)
		for i, e := range uniq {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + placeholders(len(args)+1, 9) + ")")
			args = append(args, userID, e.EventID, e.SongID, e.StartedAt.UnixMilli(), e.MSPlayed, e.Source, e.Completed,
				Counts(songs[e.SongID].duration, e.MSPlayed), nowMs)
		}
		q.WriteString(` ON CONFLICT (user_id, event_id) DO NOTHING RETURNING event_id`)
		rows, err := tx.QueryContext(ctx, q.String(), args...)
		if err != nil {
			return err
		}
		fresh := make(map[string]bool, len(uniq))
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			fresh[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		res.Recorded = len(fresh)
		res.Duplicates += len(uniq) - len(fresh)

		hourly := map[playKey]int64{}
		daily := map[playKey]*dayTotals{}
		songPlays := map[int64]int64{}
		artistPlays := map[int64]int64{}
		var days []playKey // (song, day) with counted plays, in first-seen order
		for _, e := range uniq {
			if !fresh[e.EventID] {
				continue
			}
			at := min(e.StartedAt.UnixMilli(), nowMs) / 1000
			dk := playKey{e.SongID, at / 86400}
			d := daily[dk]
			if d == nil {
				d = &dayTotals{}
				daily[dk] = d
			}
			d.ms += e.MSPlayed
			f := songs[e.SongID]
			if !Counts(f.duration, e.MSPlayed) {
				continue
			}
			res.Counted++
			if d.plays == 0 {
				days = append(days, dk)
			}
			d.plays++
			hourly[playKey{e.SongID, at / 3600}]++
			songPlays[e.SongID]++
			artistPlays[f.artist]++
		}
		if len(daily) == 0 {
			return nil
		}
		// Listeners: this user counts once per song and day.
		if len(days) > 0 {
			args = args[:0]
			q.Reset()
			q.WriteString(`INSERT INTO song_listeners_daily (song_id, day, user_id) VALUES `)
			for i, k := range days {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(" + placeholders(len(args)+1, 3) + ")")
				args = append(args, k.song, k.bucket, userID)
			}
			q.WriteString(` ON CONFLICT (song_id, day, user_id) DO NOTHING RETURNING song_id, day`)
			rows, err := tx.QueryContext(ctx, q.String(), args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var k playKey
				if err := rows.Scan(&k.song, &k.bucket); err != nil {
					rows.Close()
					return err
				}
				daily[k].listeners++
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		dayKeys := sortedKeys(daily)
		args = args[:0]
		q.Reset()
		q.WriteString(`INSERT INTO song_plays_daily (song_id, day, plays, listeners, ms_played) VALUES `)
		for i, k := range dayKeys {
			if i > 0 {
				q.WriteString(", ")
			}
			d := daily[k]
			q.WriteString("(" + placeholders(len(args)+1, 5) + ")")
			args = append(args, k.song, k.bucket, d.plays, d.listeners, d.ms)
		}
		q.WriteString(` ON CONFLICT (song_id, day) DO UPDATE SET plays = song_plays_daily.plays + excluded.plays,
			listeners = song_plays_daily.listeners + excluded.listeners, ms_played = song_plays_daily.ms_played + excluded.ms_played`)
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		if len(hourly) == 0 {
			return nil
		}
		if err := addHourly(ctx, tx, hourly); err != nil {
			return err
		}
		if err := addCounts(ctx, tx, "songs", "popularity", songPlays); err != nil {
			return err
		}
		return addCounts(ctx, tx, "artists", "play_count", artistPlays)
	})
	if err != nil {
		return IngestResult{}, fmt.Errorf("store: record events: %w", err)
	}
	return res, nil
}

// sortedKeys returns the keys of m in (song, bucket) order: statements
// touch rows in one order, so concurrent batches do not deadlock.
func sortedKeys[V any](m map[playKey]V) []playKey {
	keys := make([]playKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b playKey) int {
		if a.song != b.song {
			return cmp.Compare(a.song, b.song)
		}
		return cmp.Compare(a.bucket, b.bucket)
	})
	return keys
}

// addHourly adds plays into song_plays_hourly with one statement; the
// schema's triggers fold them into songs.trend_log.
func addHourly(ctx context.Context, tx *sql.Tx, hourly map[playKey]int64) error {
	var q strings.Builder
	var args []any
	q.WriteString(`INSERT INTO song_plays_hourly (song_id, hour, plays) VALUES `)
	for i, k := range sortedKeys(hourly) {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(" + placeholders(len(args)+1, 3) + ")")
		args = append(args, k.song, k.bucket, hourly[k])
	}
	q.WriteString(` ON CONFLICT (song_id, hour) DO UPDATE SET plays = song_plays_hourly.plays + excluded.plays`)
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}

// addCounts adds n[id] to column col of table's rows with one statement.
func addCounts(ctx context.Context, tx *sql.Tx, table, col string, n map[int64]int64) error {
	ids := make([]int64, 0, len(n))
	for id := range n {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var q strings.Builder
	args := make([]any, 0, 2*len(ids))
	q.WriteString(`UPDATE ` + table + ` SET ` + col + ` = ` + col + ` + v.n FROM (SELECT column1 AS id, column2 AS n FROM (VALUES `)
	for i, id := range ids {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "(CAST($%d AS BIGINT), CAST($%d AS BIGINT))", len(args)+1, len(args)+2)
		args = append(args, id, n[id])
	}
	q.WriteString(`) AS t) AS v WHERE ` + table + `.id = v.id`)
	_, err := tx.ExecContext(ctx, q.String(), args...)
	return err
}

// songFact is what counting a play needs of its song.
type songFact struct{ duration, artist int64 }

// songFacts loads the duration and primary artist of the songs of evs, or
// fails with *UnknownSongsError.
func songFacts(ctx context.Context, db querier, evs []PlayEvent) (map[int64]songFact, error) {
	var ids []int64
	for _, e := range evs {
		ids = append(ids, e.SongID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := db.QueryContext(ctx, `SELECT id, duration_ms, primary_artist_id FROM songs WHERE id IN (`+placeholders(1, len(ids))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	facts := make(map[int64]songFact, len(ids))
	for rows.Next() {
		var id int64
		var f songFact
		if err := rows.Scan(&id, &f.duration, &f.artist); err != nil {
			return nil, err
		}
		facts[id] = f
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing []int64
	for _, id := range ids {
		if _, ok := facts[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, &UnknownSongsError{IDs: missing}
	}
	return facts, nil
}

// RecentPlay is a counted play of a song.
type RecentPlay struct {
	Song     Song
	PlayedAt time.Time
}

// MaxRecentPlays is how far back recently played lists.
const MaxRecentPlays = 1000

// RecentlyPlayed returns a page of userID's counted plays, newest start
// first, and how many there are (at most MaxRecentPlays).
func (s *Store) RecentlyPlayed(ctx context.Context, userID int64, limit, offset int) ([]RecentPlay, int, error) {
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM play_events WHERE user_id = $1 AND counted LIMIT $2) c`,
		userID, MaxRecentPlays).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: recently played of user %d: %w", userID, err)
	}
	if offset >= total {
		return nil, total, nil
	}
	limit = min(limit, total-offset)
	rows, err := s.read.QueryContext(ctx, `SELECT `+songColumns+`, e.started_at FROM play_events e
		JOIN songs s ON s.id = e.song_id JOIN albums al ON al.id = s.album_id
		WHERE e.user_id = $1 AND e.counted ORDER BY e.started_at DESC, e.event_id DESC LIMIT $2 OFFSET $3`, userID, limit, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("store: recently played of user %d: %w", userID, err)
	}
	out, err := scanTimedSongs(ctx, s.read, rows)
	if err != nil {
		return nil, 0, fmt.Errorf("store: recently played of user %d: %w", userID, err)
	}
	plays := make([]RecentPlay, len(out))
	for i, ts := range out {
		plays[i] = RecentPlay{Song: ts.song, PlayedAt: ts.at}
	}
	return plays, total, nil
}

// DailyPlays is one row of the per-song daily rollup.
type DailyPlays struct {
	Day       time.Time // midnight UTC
	Plays     int64
	Listeners int64
	MSPlayed  int64
}

// SongDailyPlays returns the daily rollup of songID for the days from
// from to to (inclusive, UTC), oldest first; days without events are left
// out.
func (s *Store) SongDailyPlays(ctx context.Context, songID int64, from, to time.Time) ([]DailyPlays, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT day, plays, listeners, ms_played FROM song_plays_daily
		WHERE song_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day`, songID, from.Unix()/86400, to.Unix()/86400)
	if err != nil {
		return nil, fmt.Errorf("store: daily plays of song %d: %w", songID, err)
	}
	defer rows.Close()
	var out []DailyPlays
	for rows.Next() {
		var d DailyPlays
		var day int64
		if err := rows.Scan(&day, &d.Plays, &d.Listeners, &d.MSPlayed); err != nil {
			return nil, fmt.Errorf("store: daily plays of song %d: %w", songID, err)
		}
		d.Day = time.Unix(day*86400, 0).UTC()
		out = append(out, d)
	}
	return out, rows.Err()
}
