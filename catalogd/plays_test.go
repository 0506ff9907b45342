package catalogd

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store"
)

// postEventsOK posts a batch of events as u and decodes the 200 answer.
func (e *env) postEventsOK(t *testing.T, u user, evs ...any) eventsResponse {
	t.Helper()
	r := e.do(request{method: "POST", path: "/events", token: u.AccessToken, body: map[string]any{"events": evs}})
	wantStatus(t, r, http.StatusOK, "")
	var res eventsResponse
	r.decode(t, &res)
	return res
}

// reasons maps rejected event ids to their reasons.
func reasons(res eventsResponse) map[string]string {
	m := map[string]string{}
	for _, rj := range res.Rejected {
		m[rj.EventID] = rj.Reason
	}
	return m
}

// TestEventsCannotBuyCharts is issue 14's chart-buying report: one
// listener posts two batches of 500 events of one 60 s song, all started
// at the same moment, some claiming a day of listening. At most one play
// counts, the rest are rejected one by one, and trending and the artist's
// play count move by one listener.
func TestEventsCannotBuyCharts(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ctx := context.Background()
		short, err := e.store.CreateSong(ctx, store.NewSong{AlbumID: f.album.ID, Title: "Short", TrackNumber: 30, DurationMS: 60_000,
			Genre: "post-rock", Status: store.StatusReady, CurrentVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		mallory := e.register("mallory@example.com", "Mallory")
		started := e.clock.Now().Add(-2 * time.Hour)
		counted := 0
		for b := range 2 {
			evs := make([]any, store.MaxEventBatch)
			for i := range evs {
				ms := int64(60_000)
				if i%5 == 0 {
					ms = maxPlayMS // 24 h of a 60 s song
				}
				evs[i] = event(fmt.Sprintf("buy-%d-%d", b, i), short.ID, started, ms)
			}
			res := e.postEventsOK(t, mallory, evs...)
			counted += res.Counted
			if res.Recorded+len(res.Rejected) != store.MaxEventBatch {
				t.Errorf("batch %d: recorded %d + rejected %d != %d", b, res.Recorded, len(res.Rejected), store.MaxEventBatch)
			}
			rs := reasons(res)
			if got := rs[fmt.Sprintf("buy-%d-0", b)]; got != store.RejectLongerThanSong {
				t.Errorf("batch %d: a 24 h play of a 60 s song: reason %q", b, got)
			}
			if got := rs[fmt.Sprintf("buy-%d-1", b)]; b == 1 && got != store.RejectOverlap {
				t.Errorf("batch %d: a play at the same moment as a counted one: reason %q", b, got)
			}
		}
		if counted != 1 {
			t.Errorf("counted %d plays of 1,000 started at one moment, want 1", counted)
		}
		if so, _ := e.store.SongByID(ctx, short.ID); so.Popularity != 1 {
			t.Errorf("popularity %d, want 1", so.Popularity)
		}
		var av artistView
		e.get("/artists/"+itoa(f.artist.ID), "").decode(t, &av)
		if *av.PlayCount != 1 {
			t.Errorf("artist play count %d, want 1", *av.PlayCount)
		}
		// Two honest listeners of another song beat the one account.
		for i := range 2 {
			u := e.register(fmt.Sprintf("fan%d@example.com", i), "Fan")
			if res := e.postEventsOK(t, u, event("fan", f.ready.ID, started, 200_000)); res.Counted != 1 {
				t.Fatalf("fan %d: %+v", i, res)
			}
		}
		var tr trendingResponse
		r := e.get("/songs/trending?genre=post-rock", "")
		wantStatus(t, r, http.StatusOK, "")
		r.decode(t, &tr)
		if len(tr.Items) != 2 || tr.Items[0].ID != f.ready.ID || tr.Items[1].ID != short.ID {
			t.Errorf("trending = %s, want song %d (2 listeners) before %d (1)", r.body, f.ready.ID, short.ID)
		}
	})
}

// TestEventPlausibility: each rule rejects its event by id and reason and
// records the rest of the batch.
func TestEventPlausibility(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture() // 300 s songs
		now := e.clock.Now()
		ann := e.register("ann@example.com", "Ann")
		res := e.postEventsOK(t, ann,
			event("ok", f.ready.ID, now.Add(-time.Hour), 300_000),
			event("future", f.ready.ID, now.Add(5*time.Minute), 40_000),
			event("old", f.ready.ID, now.Add(-8*24*time.Hour), 40_000),
			event("too-long", f.ready.ID, now.Add(-2*time.Hour), 311_000),
			event("not-yet", f.other.ID, now.Add(-2*time.Minute), 200_000),
			event("overlap", f.other.ID, now.Add(-time.Hour+time.Minute), 60_000), // whatever the song
			event("short", f.other.ID, now.Add(-time.Hour+2*time.Minute), 10_000), // does not count: not checked
		)
		want := map[string]string{"future": store.RejectFuture, "old": store.RejectTooOld, "too-long": store.RejectLongerThanSong,
			"not-yet": store.RejectLongerThanTime, "overlap": store.RejectOverlap}
		if got := reasons(res); len(got) != len(want) || res.Recorded != 2 || res.Counted != 1 {
			t.Errorf("answer %+v, want rejected %v", res, want)
		} else {
			for id, r := range want {
				if got[id] != r {
					t.Errorf("%s: reason %q, want %q", id, got[id], r)
				}
			}
		}
		// The same overlap across batches.
		if res := e.postEventsOK(t, ann, event("overlap-2", f.other.ID, now.Add(-time.Hour+4*time.Minute), 60_000)); reasons(res)["overlap-2"] != store.RejectOverlap {
			t.Errorf("overlap with an earlier batch: %+v", res)
		}
		// Rate: at most MaxCountedPerHour counted plays start in one hour.
		hour := now.Add(-5 * time.Hour).Truncate(time.Hour)
		var evs []any
		for i := range store.MaxCountedPerHour + 1 {
			evs = append(evs, event(fmt.Sprintf("r-%d", i), f.ready.ID, hour.Add(time.Duration(i)*59*time.Second), 31_000))
		}
		res = e.postEventsOK(t, ann, evs...)
		if res.Counted != store.MaxCountedPerHour || len(res.Rejected) != 1 || res.Rejected[0] != (rejectedEvent{fmt.Sprintf("r-%d", store.MaxCountedPerHour), store.RejectRateLimited}) {
			t.Errorf("61 plays in an hour: counted %d, rejected %+v", res.Counted, res.Rejected)
		}
		// A rejected event is not recorded: sent again (say after a clock
		// fix) it is judged again.
		if res := e.postEventsOK(t, ann, event("future", f.ready.ID, now.Add(-30*time.Minute), 40_000)); res.Recorded != 1 || res.Counted != 1 {
			t.Errorf("future event resent with a sane time: %+v", res)
		}
	})
}

// TestEventsForHiddenSongs: events naming a song the caller cannot see
// (processing, taken down) are refused exactly as an unknown id is, so
// the answer does not tell which hidden ids exist.
func TestEventsForHiddenSongs(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ctx := context.Background()
		gone := e.librarySongs(f, 1)[0]
		if err := e.store.TakeDown(ctx, gone, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		ann := e.register("ann@example.com", "Ann")
		now := e.clock.Now()
		answer := func(id int64) (int, string) {
			r := e.do(request{method: "POST", path: "/events", token: ann.AccessToken, body: map[string]any{"events": []any{
				event("h-1", id, now.Add(-10*time.Minute), 60_000)}}})
			p := r.problem()
			return r.StatusCode, fmt.Sprintf("%s %d %s %s %s", r.Header.Get("Content-Type"), p.Status, p.Code, p.Field,
				strings.ReplaceAll(p.Detail, itoa(id), "ID"))
		}
		wantCode, want := answer(987654)
		if wantCode != http.StatusBadRequest || !strings.Contains(want, " unknown_songs ") {
			t.Fatalf("unknown id: %d %s", wantCode, want)
		}
		for name, id := range map[string]int64{"processing": f.hidden.ID, "taken down": gone} {
			if code, got := answer(id); code != wantCode || got != want {
				t.Errorf("%s song: %d %s, want as unknown: %d %s", name, code, got, wantCode, want)
			}
		}
	})
}
