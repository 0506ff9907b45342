package catalogd

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"riff/catalogd/store"
)

// maxEventsBody caps a POST /events body: room for a full batch of
// events with long ids, so that an oversized batch is told so by count.
const maxEventsBody = 512 << 10

// eventRequest is one play as a player reports it.
type eventRequest struct {
	EventID   string `json:"event_id"`
	SongID    int64  `json:"song_id"`
	StartedAt string `json:"started_at"`
	MSPlayed  int64  `json:"ms_played"`
	Source    string `json:"source"`
	Completed bool   `json:"completed"`
}

type eventsRequest struct {
	Events []eventRequest `json:"events"`
}

type eventsResponse struct {
	Recorded   int             `json:"recorded"`
	Duplicates int             `json:"duplicates"`
	Counted    int             `json:"counted"`
	Rejected   []rejectedEvent `json:"rejected"`
}

// rejectedEvent is an event not recorded because it broke a plausibility
// rule (reason: a store.Reject* constant).
type rejectedEvent struct {
	EventID string `json:"event_id"`
	Reason  string `json:"reason"`
}

// maxPlayMS bounds ms_played: a day.
const maxPlayMS = int64(24 * time.Hour / time.Millisecond)

// checkEventID allows 1 to 64 of A-Z a-z 0-9 . _ : - (UUIDs, ULIDs,
// counters).
func checkEventID(field, id string) *apiError {
	if id == "" || len(id) > 64 {
		return invalidField(field, "invalid_event_id", "%s must be 1 to 64 characters.", field)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return invalidField(field, "invalid_event_id", "%s may hold only letters, digits and . _ : -.", field)
		}
	}
	return nil
}

// postEvents records a batch of up to store.MaxEventBatch play events of
// the caller. Event ids make it idempotent: a replayed batch (a lost
// response) counts once. Implausible events are answered one by one in
// rejected (see store.RecordEvents); songs the caller cannot see are
// refused like unknown ids.
func (s *Server) postEvents(w http.ResponseWriter, r *http.Request, p principal) error {
	var req eventsRequest
	if err := decodeJSON(w, r, maxEventsBody, &req); err != nil {
		return err
	}
	switch n := len(req.Events); {
	case req.Events == nil:
		return invalidField("events", "required", "events must list the plays.")
	case n > store.MaxEventBatch:
		return &apiError{kind: kindTooLarge, code: "too_many_events", field: "events",
			detail: fmt.Sprintf("A batch holds at most %d events, not %d; send the rest in another.", store.MaxEventBatch, n)}
	}
	evs := make([]store.PlayEvent, len(req.Events))
	for i, e := range req.Events {
		field := func(name string) string { return fmt.Sprintf("events[%d].%s", i, name) }
		if ae := checkEventID(field("event_id"), e.EventID); ae != nil {
			return ae
		}
		if e.SongID <= 0 {
			return invalidField(field("song_id"), "invalid_id", "%s must be a positive integer.", field("song_id"))
		}
		started, err := time.Parse(time.RFC3339Nano, e.StartedAt)
		if err != nil || started.Year() < 2000 {
			return invalidField(field("started_at"), "invalid_time", "%s must be an RFC 3339 time like 2025-06-01T12:00:00Z.", field("started_at"))
		}
		if e.MSPlayed < 0 || e.MSPlayed > maxPlayMS {
			return invalidField(field("ms_played"), "out_of_range", "%s must be from 0 to %d.", field("ms_played"), maxPlayMS)
		}
		switch e.Source {
		case store.SourceSearch, store.SourcePlaylist, store.SourceAlbum, store.SourceArtist, store.SourceOther:
		default:
			return invalidField(field("source"), "invalid_enum", "%s must be search, playlist, album, artist or other.", field("source"))
		}
		evs[i] = store.PlayEvent{EventID: e.EventID, SongID: e.SongID, StartedAt: started, MSPlayed: e.MSPlayed,
			Source: e.Source, Completed: e.Completed}
	}
	res, err := s.store.RecordEvents(r.Context(), p.UserID, evs)
	var unknown *store.UnknownSongsError
	if errors.As(err, &unknown) {
		return unknownSongs(err, "events")
	}
	if err != nil {
		return err
	}
	out := eventsResponse{Recorded: res.Recorded, Duplicates: res.Duplicates, Counted: res.Counted, Rejected: []rejectedEvent{}}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, rejectedEvent{EventID: rj.EventID, Reason: rj.Reason})
	}
	return writeJSON(w, http.StatusOK, out)
}

type recentPlayView struct {
	PlayedAt time.Time `json:"played_at"`
	Song     songView  `json:"song"`
}

// recentlyPlayed answers the caller's counted plays, newest first (the
// last store.MaxRecentPlays).
func (s *Server) recentlyPlayed(w http.ResponseWriter, r *http.Request, p principal) error {
	limit, offset, _, err := pageParams(r, 20, maxLimit, store.MaxRecentPlays)
	if err != nil {
		return err
	}
	plays, total, err := s.store.RecentlyPlayed(r.Context(), p.UserID, limit, offset)
	if err != nil {
		return err
	}
	views, err := listedViews(r.Context(), s, p, plays, func(pl store.RecentPlay) store.Song { return pl.Song },
		func(pl store.RecentPlay, sv songView) recentPlayView {
			return recentPlayView{PlayedAt: pl.PlayedAt, Song: sv}
		})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newPage(r, views, limit, offset, total, nil))
}
