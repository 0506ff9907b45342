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

	// EventClockSkew is how far ahead of the server's clock a player's may
	// run: an event may start at most this far in the future, and its
	// ms_played may exceed the time since its start by this much.
	EventClockSkew = time.Minute
	// EventRetention is how old an event may be when it arrives: older
	// ones are rejected (an offline player has this long to sync).
	EventRetention = 7 * 24 * time.Hour
	// EventDurationSlack is how much longer than its song a play may be
	// (players round, seek back, buffer).
	EventDurationSlack = 10 * time.Second
	// EventOverlapSlack is how much two counted plays of one user may
	// overlap (a player's two clocks, a cross-fade) and both count.
	EventOverlapSlack = 2 * time.Second
	// MaxCountedPerHour is the most plays of one user that count per
	// clock hour (UTC) of their start, whatever the songs.
	MaxCountedPerHour = 60
)

// Reasons an event is rejected (RejectedEvent.Reason).
const (
	RejectFuture         = "started_in_future"     // started_at more than EventClockSkew ahead
	RejectTooOld         = "too_old"               // started_at more than EventRetention ago
	RejectLongerThanSong = "longer_than_song"      // ms_played > duration + EventDurationSlack
	RejectLongerThanTime = "longer_than_elapsed"   // ms_played > time since started_at
	RejectOverlap        = "overlaps_another_play" // overlaps a counted play of the same user
	RejectRateLimited    = "rate_limited"          // more than MaxCountedPerHour counted plays in its hour
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
	// Rejected events broke a plausibility rule and were not recorded, in
	// batch order.
	Rejected []RejectedEvent
}

// RejectedEvent is an event RecordEvents refused, and why (a Reject*
// constant).
type RejectedEvent struct {
	EventID, Reason string
}

// playKey and dayKey group rollup increments.
type playKey struct{ song, bucket int64 }

type dayTotals struct{ plays, listeners, ms int64 }

// RecordEvents records a batch of userID's play events in one transaction
// with a handful of statements whatever the batch size: the events (once
// per event id), then, for the new ones, the per-song daily rollup
// (plays, listeners, ms played), the hourly rollup that drives trending,
// songs' popularity and artists' play counts. A play's hour and day are
// those of its start, or of now when a player's clock runs ahead.
//
// Song ids that are unknown or name a song that is not ready (processing,
// failed, taken down) fail the batch alike with *UnknownSongsError;
// nothing is recorded. Events that break a plausibility rule are rejected
// one by one (IngestResult.Rejected, see the Reject* reasons) and the
// rest recorded: a start in the future or older than EventRetention, a
// play longer than its song or than the time since its start; and, for
// plays that would count, one that overlaps another counted play of the
// user (whatever the songs) or passes MaxCountedPerHour.
//
// Trending, songs' popularity and artists' play counts count listeners,
// not plays: a user adds at most 1 per song and UTC day (the day's first
// counted play, in its hour). The daily rollup keeps raw plays as well.
func (s *Store) RecordEvents(ctx context.Context, userID int64, evs []PlayEvent) (IngestResult, error) {
	res, err := s.recordEvents(ctx, userID, evs)
	if isNoPartition(err) {
		// A day without a partition (upkeep has not run for days): make
		// them and try once more.
		if perr := s.EnsureEventPartitions(ctx, s.now()); perr != nil {
			return res, fmt.Errorf("%w (%w)", err, perr)
		}
		res, err = s.recordEvents(ctx, userID, evs)
	}
	return res, err
}

func (s *Store) recordEvents(ctx context.Context, userID int64, evs []PlayEvent) (IngestResult, error) {
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
	dups := len(evs) - len(uniq)
	now := s.now()
	nowMs := now.UnixMilli()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res = IngestResult{Duplicates: dups}
		if s.dialect == Postgres {
			// One batch of a user at a time: the overlap and rate checks
			// read what the user's earlier batches recorded.
			if _, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID); err != nil {
				return err
			}
		}
		songs, err := songFacts(ctx, tx, uniq)
		if err != nil {
			return err
		}
		known, err := s.knownEvents(ctx, tx, userID, uniq, now)
		if err != nil {
			return err
		}
		var fresh []PlayEvent
		var counting []int // indexes into fresh of plays that would count
		for _, e := range uniq {
			if known[e.EventID] {
				res.Duplicates++
				continue
			}
			if reason := implausible(e, songs[e.SongID].duration, now); reason != "" {
				res.Rejected = append(res.Rejected, RejectedEvent{e.EventID, reason})
				continue
			}
			if Counts(songs[e.SongID].duration, e.MSPlayed) {
				counting = append(counting, len(fresh))
			}
			fresh = append(fresh, e)
		}
		refused, err := s.checkPlayTimes(ctx, tx, userID, fresh, counting)
		if err != nil {
			return err
		}
		if len(refused) > 0 {
			kept := fresh[:0:0]
			for i, e := range fresh {
				if r := refused[i]; r != "" {
					res.Rejected = append(res.Rejected, RejectedEvent{e.EventID, r})
				} else {
					kept = append(kept, e)
				}
			}
			fresh = kept
		}
		if len(fresh) == 0 {
			return nil
		}
		rowsIn := make([][]any, len(fresh))
		for i, e := range fresh {
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
			ON CONFLICT DO NOTHING RETURNING event_id`, userID, nowMs, string(batch))
		if err != nil {
			return err
		}
		inserted := make(map[string]bool, len(fresh))
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			inserted[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		res.Recorded = len(inserted)
		res.Duplicates += len(fresh) - len(inserted)

		daily := map[playKey]*dayTotals{}
		firstHour := map[playKey]int64{} // (song, day) → hour of the day's first counted play in the batch
		var days []playKey               // (song, day) with counted plays, in first-seen order
		for _, e := range fresh {
			if !inserted[e.EventID] {
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
			if !Counts(songs[e.SongID].duration, e.MSPlayed) {
				continue
			}
			res.Counted++
			if d.plays == 0 {
				days = append(days, dk)
				firstHour[dk] = at / 3600
			}
			d.plays++
		}
		if len(daily) == 0 {
			return nil
		}
		// Listeners: this user counts once per song and day, and only a
		// new listener moves trending and the play counts.
		hourly := map[playKey]int64{}
		songPlays := map[int64]int64{}
		artistPlays := map[int64]int64{}
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
				hourly[playKey{k.song, firstHour[k]}]++
				songPlays[k.song]++
				artistPlays[songs[k.song].artist]++
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

// implausible returns why event e of a song durationMS long cannot have
// happened by now, or "".
func implausible(e PlayEvent, durationMS int64, now time.Time) string {
	switch {
	case e.StartedAt.After(now.Add(EventClockSkew)):
		return RejectFuture
	case e.StartedAt.Before(now.Add(-EventRetention)):
		return RejectTooOld
	case durationMS > 0 && e.MSPlayed > durationMS+EventDurationSlack.Milliseconds():
		return RejectLongerThanSong
	case e.MSPlayed > now.Sub(e.StartedAt).Milliseconds()+EventClockSkew.Milliseconds():
		return RejectLongerThanTime
	}
	return ""
}

// knownEvents returns which of evs' ids userID has recorded before with a
// start at most MinEventsRetention before now. Older events are too old
// to be recorded again anyway (RejectTooOld); the bound lets PostgreSQL
// plan and scan only the partitions of the last days instead of every
// day of the retention (planning the query over 90 daily partitions took
// 7.6 ms, over the last 12 1.0 ms).
func (s *Store) knownEvents(ctx context.Context, tx *sql.Tx, userID int64, evs []PlayEvent, now time.Time) (map[string]bool, error) {
	ids := make([][1]string, len(evs))
	for i, e := range evs {
		ids[i] = [1]string{e.EventID}
	}
	rows, err := tx.QueryContext(ctx, `SELECT event_id FROM play_events WHERE user_id = $1 AND started_at >= $3 AND event_id IN
		(SELECT j.id FROM `+s.jsonTable("$2", "id text")+`)`, userID, jsonText(ids), now.Add(-MinEventsRetention).UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		known[id] = true
	}
	return known, rows.Err()
}

// checkPlayTimes applies the rules between plays to the events of fresh
// at the indexes counting (those that would count): no two counted plays
// of userID overlap by more than EventOverlapSlack, and at most
// MaxCountedPerHour start in any UTC hour, counting what is recorded.
// Earlier starts win. It returns the reason per index of fresh refused.
func (s *Store) checkPlayTimes(ctx context.Context, tx *sql.Tx, userID int64, fresh []PlayEvent, counting []int) (map[int]string, error) {
	if len(counting) == 0 {
		return nil, nil
	}
	const hourMs, dayMs = 3600_000, 24 * 3600_000
	type span struct{ from, to int64 }
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, i := range counting {
		e := fresh[i]
		lo = min(lo, e.StartedAt.UnixMilli())
		hi = max(hi, e.StartedAt.UnixMilli()+e.MSPlayed)
	}
	// Recorded plays that may overlap or share an hour: a play lasts at
	// most a day (the API's bound on ms_played).
	rows, err := tx.QueryContext(ctx, `SELECT started_at, ms_played FROM play_events
		WHERE user_id = $1 AND counted AND started_at >= $2 AND started_at < $3`,
		userID, lo-dayMs, (hi/hourMs+1)*hourMs)
	if err != nil {
		return nil, err
	}
	var taken []span
	perHour := map[int64]int{}
	for rows.Next() {
		var sp span
		var ms int64
		if err := rows.Scan(&sp.from, &ms); err != nil {
			rows.Close()
			return nil, err
		}
		sp.to = sp.from + ms
		taken = append(taken, sp)
		perHour[sp.from/hourMs]++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	order := slices.Clone(counting)
	slices.SortStableFunc(order, func(a, b int) int { return fresh[a].StartedAt.Compare(fresh[b].StartedAt) })
	slack := EventOverlapSlack.Milliseconds()
	refused := map[int]string{}
	for _, i := range order {
		e := fresh[i]
		sp := span{e.StartedAt.UnixMilli(), e.StartedAt.UnixMilli() + e.MSPlayed}
		h := sp.from / hourMs
		if perHour[h] >= MaxCountedPerHour {
			refused[i] = RejectRateLimited
			continue
		}
		overlaps := false
		for _, t := range taken {
			if sp.from < t.to-slack && t.from < sp.to-slack {
				overlaps = true
				break
			}
		}
		if overlaps {
			refused[i] = RejectOverlap
			continue
		}
		taken = append(taken, sp)
		perHour[h]++
	}
	return refused, nil
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
// fails with *UnknownSongsError naming those that do not exist or are not
// ready (a caller cannot tell the two apart).
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
	rows, err := db.QueryContext(ctx, `SELECT id, duration_ms, primary_artist_id FROM songs
		WHERE status = 'ready' AND id IN (`+placeholders(1, len(ids))+`)`, args...)
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
