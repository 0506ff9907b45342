package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
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
		rowsIn := make([][]any, len(uniq))
		for i, e := range uniq {
			rowsIn[i] = []any{e.EventID, e.SongID, e.StartedAt.UnixMilli(), e.MSPlayed, e.Source, e.Completed,
				Counts(songs[e.SongID].duration, e.MSPlayed)}
		}
		batch, err := json.Marshal(rowsIn)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `INSERT INTO play_events
			(user_id, event_id, song_id, started_at, ms_played, source, completed, counted, received_at)
			SELECT $1, j.event_id, j.song_id, j.started_at, j.ms_played, j.source, j.completed, j.counted, $2
			FROM `+s.jsonTable("$3", "event_id text", "song_id bigint", "started_at bigint", "ms_played bigint",
			"source text", "completed boolean", "counted boolean")+` WHERE true
			ON CONFLICT (user_id, event_id) DO NOTHING RETURNING event_id`, userID, nowMs, string(batch))
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
			keys := make([][2]int64, len(days))
			for i, k := range days {
				keys[i] = [2]int64{k.song, k.bucket}
			}
			rows, err := tx.QueryContext(ctx, `INSERT INTO song_listeners_daily (song_id, day, user_id)
				SELECT j.song_id, j.day, $1 FROM `+s.jsonTable("$2", "song_id bigint", "day bigint")+` WHERE true
				ON CONFLICT (song_id, day, user_id) DO NOTHING RETURNING song_id, day`, userID, jsonText(keys))
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
		dayRows := make([][5]int64, 0, len(daily))
		for _, k := range sortedKeys(daily) {
			d := daily[k]
			dayRows = append(dayRows, [5]int64{k.song, k.bucket, d.plays, d.listeners, d.ms})
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO song_plays_daily (song_id, day, plays, listeners, ms_played)
			SELECT j.song_id, j.day, j.plays, j.listeners, j.ms_played
			FROM `+s.jsonTable("$1", "song_id bigint", "day bigint", "plays bigint", "listeners bigint", "ms_played bigint")+` WHERE true
			ON CONFLICT (song_id, day) DO UPDATE SET plays = song_plays_daily.plays + excluded.plays,
			listeners = song_plays_daily.listeners + excluded.listeners, ms_played = song_plays_daily.ms_played + excluded.ms_played`,
			jsonText(dayRows)); err != nil {
			return err
		}
		if len(hourly) == 0 {
			return nil
		}
		if s.dialect == Postgres {
			// The trigger would update each song once per hour row (a new
			// row version each time); addSongPlays folds the batch's plays
			// in instead.
			if _, err := tx.ExecContext(ctx, `SET LOCAL riff.trend_by_caller = 'on'`); err != nil {
				return err
			}
		}
		if err := s.addHourly(ctx, tx, hourly); err != nil {
			return err
		}
		if err := s.addSongPlays(ctx, tx, hourly, songPlays); err != nil {
			return err
		}
		return s.addCounts(ctx, tx, "artists", "play_count", artistPlays)
	})
	if err != nil {
		return IngestResult{}, fmt.Errorf("store: record events: %w", err)
	}
	return res, nil
}

// jsonTable returns a FROM item "(SELECT …) j" over a JSON array of
// arrays bound to param: column i of each row is cols[i], "name type"
// (the PostgreSQL type; SQLite takes JSON's own). A batch is then one
// statement with one parameter, whose text does not depend on the batch
// size: nothing to re-parse per batch, no parameter limits.
func (s *Store) jsonTable(param string, cols ...string) string {
	var b strings.Builder
	b.WriteString("(SELECT ")
	for i, c := range cols {
		name, typ, _ := strings.Cut(c, " ")
		if i > 0 {
			b.WriteString(", ")
		}
		if s.dialect == Postgres {
			fmt.Fprintf(&b, "(e->>%d)::%s AS %s", i, typ, name)
		} else {
			fmt.Fprintf(&b, "value->>%d AS %s", i, name)
		}
	}
	if s.dialect == Postgres {
		b.WriteString(" FROM jsonb_array_elements(" + param + "::jsonb) e) j")
	} else {
		b.WriteString(" FROM json_each(" + param + ")) j")
	}
	return b.String()
}

// jsonText marshals rows of numbers for jsonTable.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // numbers only
	}
	return string(b)
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
func (s *Store) addHourly(ctx context.Context, tx *sql.Tx, hourly map[playKey]int64) error {
	rows := make([][3]int64, 0, len(hourly))
	for _, k := range sortedKeys(hourly) {
		rows = append(rows, [3]int64{k.song, k.bucket, hourly[k]})
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO song_plays_hourly (song_id, hour, plays)
		SELECT j.song_id, j.hour, j.plays FROM `+s.jsonTable("$1", "song_id bigint", "hour bigint", "plays bigint")+` WHERE true
		ON CONFLICT (song_id, hour) DO UPDATE SET plays = song_plays_hourly.plays + excluded.plays`, jsonText(rows))
	return err
}

// addSongPlays adds a batch's counted plays to songs' popularity. On
// PostgreSQL the same statement folds them into trend_log, as the
// schema's trigger does per hourly row (which RecordEvents turns off
// there): b = log₂ Σ plays·2^((hour − epoch)/24) over the song's hours in
// the batch, added to trend_log in the log domain. On SQLite the trigger
// does it: its updates in place cost little next to the full-text index
// updates a popularity change can cause.
func (s *Store) addSongPlays(ctx context.Context, tx *sql.Tx, hourly map[playKey]int64, plays map[int64]int64) error {
	if s.dialect != Postgres {
		return s.addCounts(ctx, tx, "songs", "popularity", plays)
	}
	type acc struct{ max, sum float64 } // Σ 2^(b_h) = 2^max · sum
	trend := make(map[int64]*acc, len(plays))
	for _, k := range sortedKeys(hourly) {
		b := math.Log2(float64(hourly[k])) + float64(k.bucket-trendEpochHour)/TrendingHalfLife.Hours()
		a := trend[k.song]
		switch {
		case a == nil:
			trend[k.song] = &acc{b, 1}
		case b > a.max:
			a.sum, a.max = a.sum*math.Exp2(a.max-b)+1, b
		default:
			a.sum += math.Exp2(b - a.max)
		}
	}
	ids := make([]int64, 0, len(plays))
	for id := range plays {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rows := make([][3]any, len(ids))
	for i, id := range ids {
		a := trend[id]
		rows[i] = [3]any{id, plays[id], a.max + math.Log2(a.sum)}
	}
	_, err := tx.ExecContext(ctx, `UPDATE songs SET popularity = popularity + j.n, trend_log = CASE
			WHEN trend_log < j.b - 60 THEN j.b
			WHEN j.b < trend_log - 60 THEN trend_log
			ELSE GREATEST(trend_log, j.b) + ln(1 + power(2.0::double precision, -abs(trend_log - j.b))) / ln(2.0) END
		FROM `+s.jsonTable("$1", "id bigint", "n bigint", "b double precision")+` WHERE songs.id = j.id`, jsonText(rows))
	return err
}

// addCounts adds n[id] to column col of table's rows with one statement.
func (s *Store) addCounts(ctx context.Context, tx *sql.Tx, table, col string, n map[int64]int64) error {
	ids := make([]int64, 0, len(n))
	for id := range n {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	rows := make([][2]int64, len(ids))
	for i, id := range ids {
		rows[i] = [2]int64{id, n[id]}
	}
	_, err := tx.ExecContext(ctx, `UPDATE `+table+` SET `+col+` = `+col+` + j.n
		FROM `+s.jsonTable("$1", "id bigint", "n bigint")+` WHERE `+table+`.id = j.id`, jsonText(rows))
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
