package subsonic

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"riff/catalogd/store"
)

// Stars are Riff's likes (songs) and follows (artists). Riff has no album
// likes: starring an album is refused.

func (h *Handler) star(c *call, _ *response) error   { return h.setStar(c, true) }
func (h *Handler) unstar(c *call, _ *response) error { return h.setStar(c, false) }

func (h *Handler) setStar(c *call, on bool) error {
	songIDs, err := c.ids("id")
	if err != nil {
		return err
	}
	artistIDs, err := c.ids("artistId")
	if err != nil {
		return err
	}
	if len(c.r.Form["albumId"]) > 0 {
		return Fail(CodeGeneric, "Riff likes songs and follows artists; albums cannot be starred.")
	}
	if len(songIDs) == 0 && len(artistIDs) == 0 {
		return Fail(CodeMissingParameter, "Required parameter is missing: id or artistId.")
	}
	for _, id := range songIDs {
		if !on {
			if err := h.store.UnlikeSong(c.ctx, c.user.ID, id); err != nil {
				return err
			}
			continue
		}
		if _, err := h.catalog.VisibleSong(c.ctx, c.user, id); err != nil {
			return notFound(err, "song")
		}
		if err := h.store.LikeSong(c.ctx, c.user.ID, id); err != nil {
			return err
		}
	}
	for _, id := range artistIDs {
		if !on {
			if err := h.store.UnfollowArtist(c.ctx, c.user.ID, id); err != nil {
				return err
			}
			continue
		}
		if err := h.store.FollowArtist(c.ctx, c.user.ID, id); err != nil {
			return notFound(err, "artist")
		}
	}
	return nil
}

// maxStarred is how many liked songs and followed artists getStarred2
// lists.
const maxStarred = 500

// getStarred2 answers the caller's liked songs and followed artists,
// newest first (no albums: see star).
func (h *Handler) getStarred2(c *call, resp *response) error {
	liked, _, err := h.store.LikedSongs(c.ctx, c.user.ID, maxStarred, 0)
	if err != nil {
		return err
	}
	follows, _, err := h.store.FollowedArtists(c.ctx, c.user.ID, maxStarred, 0)
	if err != nil {
		return err
	}
	out := &searchResult{Artists: []artistID3{}, Albums: []albumID3{}, Songs: []child{}}
	for _, l := range liked {
		if l.Song.Status != store.StatusReady {
			continue
		}
		v := newChild(l.Song)
		v.Starred = stamp(l.LikedAt)
		out.Songs = append(out.Songs, v)
	}
	for _, f := range follows {
		v := newArtist(f.Artist, nil)
		v.Starred = stamp(f.FollowedAt)
		out.Artists = append(out.Artists, v)
	}
	resp.Starred2 = out
	return nil
}

// scrobble records plays as POST /events does (store.RecordEvents and its
// plausibility rules). A play started at time (ms since the epoch; default
// the song's length ago) and lasted as long as the song, or as long as has
// passed since, whichever is less; its event id is derived from the song
// and time, so a scrobble sent twice counts once. submission=false ("now
// playing") records nothing.
func (h *Handler) scrobble(c *call, _ *response) error {
	ids, err := c.ids("id")
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return Fail(CodeMissingParameter, "Required parameter is missing: id.")
	}
	if len(ids) > store.MaxEventBatch {
		return Fail(CodeGeneric, "At most %d songs per scrobble.", store.MaxEventBatch)
	}
	submission, err := c.boolParam("submission", true)
	if err != nil {
		return err
	}
	times := c.r.Form["time"]
	if len(times) != 0 && len(times) != len(ids) {
		return Fail(CodeGeneric, "Give one time per id, or none.")
	}
	evs := make([]store.PlayEvent, 0, len(ids))
	now := h.now()
	for i, id := range ids {
		so, err := h.catalog.VisibleSong(c.ctx, c.user, id)
		if err != nil {
			return notFound(err, "song")
		}
		if !submission {
			continue
		}
		started := now.Add(-time.Duration(so.DurationMS) * time.Millisecond)
		if len(times) > 0 {
			ms, err := strconv.ParseInt(times[i], 10, 64)
			if err != nil || ms <= 0 {
				return Fail(CodeGeneric, "time must be milliseconds since the epoch.")
			}
			started = time.UnixMilli(ms)
		}
		played := min(so.DurationMS, max(0, now.Sub(started).Milliseconds()))
		evs = append(evs, store.PlayEvent{
			EventID: fmt.Sprintf("subsonic:%d:%d", id, started.UnixMilli()), SongID: id, StartedAt: started,
			MSPlayed: played, Source: store.SourceOther, Completed: played >= so.DurationMS,
		})
	}
	if len(evs) == 0 {
		return nil
	}
	res, err := h.store.RecordEvents(c.ctx, c.user.ID, evs)
	var unknown *store.UnknownSongsError
	if errors.As(err, &unknown) {
		return Fail(CodeNotFound, "No such song: %v.", unknown.IDs)
	}
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return Fail(CodeGeneric, "Play not recorded: %s.", res.Rejected[0].Reason)
	}
	return nil
}
