package catalogd

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"riff/catalogd/store"
)

// Playlist page sizes: songs inside a playlist, and the caller's list.
const (
	defaultPlaylistSongs = 50
	maxPlaylistSongs     = 100
)

// playlistDetailView is a playlist as its pages show it.
type playlistDetailView struct {
	playlistView
	IsPublic   bool   `json:"is_public"`
	SnapshotID string `json:"snapshot_id"`
	ItemCount  int    `json:"item_count"`
	Followers  int64  `json:"followers"`
	// Songs is a page of the items (GET with include_songs=true).
	Songs *page[playlistItemView] `json:"songs,omitempty"`
}

func newPlaylistDetailView(p store.PlaylistDetail) playlistDetailView {
	return playlistDetailView{playlistView: newPlaylistView(p.Playlist), IsPublic: p.IsPublic, SnapshotID: p.SnapshotID(),
		ItemCount: p.ItemCount, Followers: p.Followers}
}

// playlistItemView is one item: a song at a position, with the item's
// stable id (to remove that one occurrence).
type playlistItemView struct {
	ItemID   int64     `json:"item_id"`
	Position int       `json:"position"`
	AddedAt  time.Time `json:"added_at"`
	Song     songView  `json:"song"`
}

// playlistEditView answers an edit: the new snapshot and what changed.
type playlistEditView struct {
	SnapshotID string          `json:"snapshot_id"`
	ItemCount  int             `json:"item_count"`
	Added      []addedItemView `json:"added,omitempty"`
	Removed    int             `json:"removed,omitempty"`
}

type addedItemView struct {
	ItemID   int64 `json:"item_id"`
	SongID   int64 `json:"song_id"`
	Position int   `json:"position"`
}

// writeEdit answers an edit, with the snapshot as the ETag too.
func writeEdit(w http.ResponseWriter, res store.EditResult) error {
	v := playlistEditView{SnapshotID: res.SnapshotID(), ItemCount: res.ItemCount, Removed: res.Removed}
	for _, a := range res.Added {
		v.Added = append(v.Added, addedItemView{a.ID, a.SongID, a.Position})
	}
	w.Header().Set("ETag", `"`+v.SnapshotID+`"`)
	return writeJSON(w, http.StatusOK, v)
}

// editor is the caller as a playlist editor, with the snapshot named by
// If-Match: none or "*" is any; otherwise one snapshot id, quoted or not
// (W/ accepted). A snapshot id that is not current fails later with 412;
// a value that is no snapshot id at all (or a list of them) is 400
// invalid_if_match.
func editor(r *http.Request, p principal) (store.Editor, error) {
	ed := store.Editor{UserID: p.UserID}
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return ed, nil
	}
	v = strings.Trim(strings.TrimPrefix(v, "W/"), `"`)
	if ed.IfVersion = store.ParseSnapshotID(v); ed.IfVersion == 0 {
		return ed, &apiError{kind: kindInvalid, code: "invalid_if_match",
			detail: "If-Match must be one snapshot_id of this playlist (as its ETag gives it), or *."}
	}
	return ed, nil
}

// playlistError turns the store's playlist edit errors into answers.
func playlistError(err error) error {
	switch {
	case errors.Is(err, store.ErrStale):
		return &apiError{kind: kindPreconditionFailed, code: "stale_snapshot", cause: err,
			detail: "The playlist changed since that snapshot (If-Match); reload it and try again."}
	case errors.Is(err, store.ErrNotOwner):
		return &apiError{kind: kindForbidden, code: "not_owner", detail: "Only the playlist's owner may change it.", cause: err}
	case errors.Is(err, store.ErrPlaylistFull):
		return &apiError{kind: kindInvalid, code: "playlist_full", field: "songs_id", cause: err,
			detail: "A playlist holds at most " + strconv.Itoa(store.MaxPlaylistItems) + " items; nothing was added."}
	case errors.Is(err, store.ErrNotInPlaylist):
		return &apiError{kind: kindNotFound, code: "not_in_playlist", detail: "That is not in the playlist.", cause: err}
	case errors.Is(err, store.ErrNotFound):
		return &apiError{kind: kindNotFound, code: "playlist_not_found", detail: "No such playlist.", cause: err}
	}
	return unknownSongs(err, "songs_id")
}

type createPlaylistRequest struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	IsPublic    bool   `json:"is_public"`
}

func checkPlaylistName(name string) *apiError { return checkText("name", name, true, 100, false) }

func checkPlaylistDescription(d string) *apiError {
	return checkText("description", d, false, 300, true)
}

func (s *Server) createPlaylist(w http.ResponseWriter, r *http.Request, p principal) error {
	var req createPlaylistRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if e := checkPlaylistName(req.Name); e != nil {
		return e
	}
	if e := checkPlaylistDescription(req.Description); e != nil {
		return e
	}
	pl, err := s.store.CreatePlaylist(r.Context(), p.UserID, store.NewPlaylist{
		Name: strings.TrimSpace(req.Name), Description: req.Description, IsPublic: req.IsPublic})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/playlists/"+itoa(pl.ID))
	w.Header().Set("ETag", `"`+pl.SnapshotID()+`"`)
	return writeJSON(w, http.StatusCreated, newPlaylistDetailView(pl))
}

// visiblePlaylist loads playlist id if p may see it: public ones, and the
// owner's private ones (404 for everyone else).
func (s *Server) visiblePlaylist(ctx context.Context, p principal, id int64) (store.PlaylistDetail, error) {
	pl, err := s.store.PlaylistByID(ctx, id)
	if err == nil && !pl.IsPublic && (p.UserID == 0 || pl.OwnerUserID != p.UserID) {
		err = store.ErrNotFound
	}
	if err != nil {
		return pl, playlistError(err)
	}
	return pl, nil
}

// getPlaylist answers a playlist and, with include_songs=true, a page of
// its songs (limit, offset) in order.
func (s *Server) getPlaylist(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	limit, offset, q, err := pageParams(r, defaultPlaylistSongs, maxPlaylistSongs, store.MaxPlaylistItems, "include_songs")
	if err != nil {
		return err
	}
	include := false
	if v, ok := q["include_songs"]; ok {
		if include, err = strconv.ParseBool(v[0]); err != nil || (v[0] != "true" && v[0] != "false") {
			return invalidField("include_songs", "invalid_enum", "include_songs must be true or false.")
		}
	}
	pl, err := s.visiblePlaylist(r.Context(), p, id)
	if err != nil {
		return err
	}
	v := newPlaylistDetailView(pl)
	if include {
		items, err := s.store.PlaylistItems(r.Context(), id, limit, offset)
		if err != nil {
			return err
		}
		views, err := listedViews(r.Context(), s, p, items, func(it store.PlaylistItem) store.Song { return it.Song },
			func(it store.PlaylistItem, sv songView) playlistItemView {
				return playlistItemView{ItemID: it.ID, Position: it.Position, AddedAt: it.AddedAt, Song: sv}
			})
		if err != nil {
			return err
		}
		pg := newPage(r, views, limit, offset, pl.ItemCount, nil)
		v.Songs = &pg
	}
	w.Header().Set("ETag", `"`+v.SnapshotID+`"`)
	return writeJSON(w, http.StatusOK, v)
}

type patchPlaylistRequest struct {
	Name        optional[string] `json:"name"`
	Description optional[string] `json:"description"`
	IsPublic    optional[bool]   `json:"is_public"`
}

func (s *Server) patchPlaylist(w http.ResponseWriter, r *http.Request, p principal) error {
	var req patchPlaylistRequest
	id, err := s.pathIDAndBody(w, r, &req)
	if err != nil {
		return err
	}
	var pc patch
	up := store.PlaylistUpdate{
		Name:        pc.name("name", req.Name, checkPlaylistName),
		Description: patchField(&pc, req.Description, checkPlaylistDescription),
	}
	if pc.err != nil {
		return pc.err
	}
	if req.IsPublic.set {
		if req.IsPublic.null {
			return invalidField("is_public", "required", "is_public must be true or false.")
		}
		up.IsPublic = &req.IsPublic.v
	}
	ed, err := editor(r, p)
	if err != nil {
		return err
	}
	pl, err := s.store.UpdatePlaylist(r.Context(), id, ed, up)
	if err != nil {
		return playlistError(err)
	}
	w.Header().Set("ETag", `"`+pl.SnapshotID()+`"`)
	return writeJSON(w, http.StatusOK, newPlaylistDetailView(pl))
}

func (s *Server) deletePlaylist(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ed, err := editor(r, p)
	if err != nil {
		return err
	}
	if err := s.store.DeletePlaylist(r.Context(), id, ed); err != nil {
		return playlistError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// playlistSongsRequest is the body of PUT /playlists/{id}/songs: either an
// add (songs_id, optional position) or a reorder (range_start,
// range_length, insert_before), as in the Spotify Web API.
type playlistSongsRequest struct {
	SongsID      []int64 `json:"songs_id"`
	Position     *int    `json:"position"`
	RangeStart   *int    `json:"range_start"`
	RangeLength  *int    `json:"range_length"`
	InsertBefore *int    `json:"insert_before"`
}

func (s *Server) putPlaylistSongs(w http.ResponseWriter, r *http.Request, p principal) error {
	var req playlistSongsRequest
	id, err := s.pathIDAndBody(w, r, &req)
	if err != nil {
		return err
	}
	reorder := req.RangeStart != nil || req.RangeLength != nil || req.InsertBefore != nil
	switch {
	case req.SongsID != nil && reorder:
		return invalidField("songs_id", "conflicting_fields", "Send songs_id (and position) to add, or range_start, range_length and insert_before to reorder, not both.")
	case reorder:
		return s.reorderPlaylist(w, r, p, id, req)
	case req.SongsID == nil:
		return invalidField("songs_id", "required", "songs_id must list the songs to add.")
	}
	if req.Position != nil && *req.Position < 0 {
		return invalidField("position", "out_of_range", "position must be 0 or more.")
	}
	switch n := len(req.SongsID); {
	case n == 0:
		return invalidField("songs_id", "required", "songs_id must list at least one song.")
	case n > store.MaxPlaylistAdd:
		return invalidField("songs_id", "too_many", "At most %d songs may be added at once, not %d.", store.MaxPlaylistAdd, n)
	}
	for _, sid := range req.SongsID {
		if sid <= 0 {
			return invalidField("songs_id", "invalid_id", "Song ids are positive integers, not %d.", sid)
		}
	}
	pos := -1
	if req.Position != nil {
		pos = *req.Position
	}
	return s.playlistEdit(w, r, p, func(ctx context.Context, ed store.Editor) (store.EditResult, error) {
		res, err := s.store.AddPlaylistSongs(ctx, id, ed, req.SongsID, pos)
		if errors.Is(err, store.ErrOutOfRange) {
			return res, &apiError{kind: kindInvalid, code: "out_of_range", field: "position", cause: err,
				detail: "position is past the end of the playlist (it may be at most the number of items)."}
		}
		return res, err
	})
}

func (s *Server) reorderPlaylist(w http.ResponseWriter, r *http.Request, p principal, id int64, req playlistSongsRequest) error {
	if req.RangeStart == nil {
		return invalidField("range_start", "required", "range_start is required to reorder.")
	}
	if req.InsertBefore == nil {
		return invalidField("insert_before", "required", "insert_before is required to reorder.")
	}
	length := 1
	if req.RangeLength != nil {
		length = *req.RangeLength
	}
	for _, f := range []struct {
		name  string
		v, lo int
	}{{"range_start", *req.RangeStart, 0}, {"range_length", length, 1}, {"insert_before", *req.InsertBefore, 0}} {
		if f.v < f.lo || f.v > store.MaxPlaylistItems {
			return invalidField(f.name, "out_of_range", "%s must be from %d to %d.", f.name, f.lo, store.MaxPlaylistItems)
		}
	}
	return s.playlistEdit(w, r, p, func(ctx context.Context, ed store.Editor) (store.EditResult, error) {
		res, err := s.store.ReorderPlaylist(ctx, id, ed, *req.RangeStart, length, *req.InsertBefore)
		if errors.Is(err, store.ErrOutOfRange) {
			return res, &apiError{kind: kindInvalid, code: "out_of_range", field: "range_start", cause: err,
				detail: "The range or insert_before lies outside the playlist."}
		}
		return res, err
	})
}

// removePlaylistSong removes every occurrence of a song.
func (s *Server) removePlaylistSong(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.removeFromPlaylist(w, r, p, "songs_id", s.store.RemovePlaylistSong)
}

// removePlaylistItem removes one item by its id.
func (s *Server) removePlaylistItem(w http.ResponseWriter, r *http.Request, p principal) error {
	return s.removeFromPlaylist(w, r, p, "item_id", s.store.RemovePlaylistItem)
}

// removeFromPlaylist answers a removal from playlist {id} of what the path
// parameter param names.
func (s *Server) removeFromPlaylist(w http.ResponseWriter, r *http.Request, p principal, param string,
	remove func(ctx context.Context, id int64, ed store.Editor, target int64) (store.EditResult, error)) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	target, err := pathInt(r, param)
	if err != nil {
		return err
	}
	return s.playlistEdit(w, r, p, func(ctx context.Context, ed store.Editor) (store.EditResult, error) {
		return remove(ctx, id, ed, target)
	})
}

// playlistEdit runs edit as p (If-Match: see editor) and answers the
// edit; store errors are answered by playlistError.
func (s *Server) playlistEdit(w http.ResponseWriter, r *http.Request, p principal,
	edit func(ctx context.Context, ed store.Editor) (store.EditResult, error)) error {
	ed, err := editor(r, p)
	if err != nil {
		return err
	}
	res, err := edit(r.Context(), ed)
	if err != nil {
		return playlistError(err)
	}
	return writeEdit(w, res)
}

// followPlaylist follows a playlist the caller can see (idempotent;
// setRelation).
func (s *Server) followPlaylist(ctx context.Context, userID, id int64) error {
	if err := s.store.FollowPlaylist(ctx, userID, id); err != nil {
		return playlistError(err)
	}
	return nil
}

// myPlaylists answers the playlists the caller owns or follows.
func (s *Server) myPlaylists(w http.ResponseWriter, r *http.Request, p principal) error {
	return writeList(w, r, 20, maxOffset,
		func(ctx context.Context, limit, offset int) ([]store.PlaylistDetail, int, error) {
			return s.store.UserPlaylists(ctx, p.UserID, limit, offset)
		},
		func(pl store.PlaylistDetail) (playlistDetailView, error) { return newPlaylistDetailView(pl), nil })
}
