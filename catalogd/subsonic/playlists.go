package subsonic

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"riff/catalogd/store"
)

// Playlists are Riff's playlists, the same rows as /playlists: a change
// here shows there at once and the other way round.

// playlistError answers the store's playlist errors.
func playlistError(err error) error {
	var unknown *store.UnknownSongsError
	switch {
	case errors.Is(err, store.ErrNotOwner):
		return Fail(CodeNotAuthorized, "Only the playlist's owner may change it.")
	case errors.Is(err, store.ErrNotFound):
		return Fail(CodeNotFound, "No such playlist.")
	case errors.Is(err, store.ErrPlaylistFull):
		return Fail(CodeGeneric, "A playlist holds at most %d songs.", store.MaxPlaylistItems)
	case errors.As(err, &unknown):
		return Fail(CodeNotFound, "No such song: %v.", unknown.IDs)
	}
	return err
}

// getPlaylists lists the caller's playlists (username: only the caller's
// own name).
func (h *Handler) getPlaylists(c *call, resp *response) error {
	if u := c.r.Form.Get("username"); u != "" && store.EmailKey(u) != store.EmailKey(c.user.Name) {
		return Fail(CodeNotAuthorized, "Only your own playlists are listed.")
	}
	pls, _, err := h.store.UserPlaylists(c.ctx, c.user.ID, maxListSize, 0)
	if err != nil {
		return err
	}
	out := &playlists{Playlists: []playlist{}}
	for _, p := range pls {
		v := newPlaylist(p, 0)
		v.Readonly = p.OwnerUserID != c.user.ID
		out.Playlists = append(out.Playlists, v)
	}
	resp.Playlists = out
	return nil
}

// playlistWithEntries (getPlaylist) answers playlist id with its playable
// songs (songs no longer ready are left out: apps cannot play them).
func (h *Handler) playlistWithEntries(c *call, resp *response, id int64) error {
	p, err := h.catalog.VisiblePlaylist(c.ctx, c.user, id)
	if err != nil {
		return playlistError(err)
	}
	items, err := h.store.PlaylistItems(c.ctx, id, store.MaxPlaylistItems, 0)
	if err != nil {
		return err
	}
	var total int64
	entries := []child{}
	for _, it := range items {
		if it.Song.Status != store.StatusReady {
			continue
		}
		total += it.Song.DurationMS
		entries = append(entries, newChild(it.Song))
	}
	v := newPlaylist(p, total)
	v.Readonly = p.OwnerUserID != c.user.ID
	v.Entries = entries
	resp.Playlist = &v
	return nil
}

// createPlaylist makes a private playlist named name with the songs
// songId, or, given playlistId, replaces that playlist's songs.
func (h *Handler) createPlaylist(c *call, resp *response) error {
	songIDs, err := c.ids("songId")
	if err != nil {
		return err
	}
	var id int64
	if v := c.r.Form.Get("playlistId"); v != "" {
		if id, err = parseID(v); err != nil {
			return err
		}
		if err := h.clearPlaylist(c, id); err != nil {
			return err
		}
	} else {
		name, err := c.param("name", true)
		if err != nil {
			return err
		}
		if err := h.catalog.CheckPlaylist(name, ""); err != nil {
			return err
		}
		p, err := h.store.CreatePlaylist(c.ctx, c.user.ID, store.NewPlaylist{Name: strings.TrimSpace(name)})
		if err != nil {
			return err
		}
		id = p.ID
	}
	if err := h.addSongs(c, id, songIDs); err != nil {
		return err
	}
	return h.playlistWithEntries(c, resp, id)
}

// clearPlaylist removes every item of playlist id.
func (h *Handler) clearPlaylist(c *call, id int64) error {
	items, err := h.playlistItems(c, id)
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return nil
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	_, err = h.store.RemovePlaylistItems(c.ctx, id, c.editor(), ids)
	return playlistError(err)
}

// playlistItems returns every item of playlist id, which the caller must
// see.
func (h *Handler) playlistItems(c *call, id int64) ([]store.PlaylistItem, error) {
	if _, err := h.catalog.VisiblePlaylist(c.ctx, c.user, id); err != nil {
		return nil, playlistError(err)
	}
	return h.store.PlaylistItems(c.ctx, id, store.MaxPlaylistItems, 0)
}

// editor is the caller as the editor of a playlist.
func (c *call) editor() store.Editor { return store.Editor{UserID: c.user.ID} }

// addSongs appends songIDs in batches of store.MaxPlaylistAdd.
func (h *Handler) addSongs(c *call, id int64, songIDs []int64) error {
	if len(songIDs) > store.MaxPlaylistItems {
		return Fail(CodeGeneric, "A playlist holds at most %d songs.", store.MaxPlaylistItems)
	}
	for batch := range slices.Chunk(songIDs, store.MaxPlaylistAdd) {
		if _, err := h.store.AddPlaylistSongs(c.ctx, id, c.editor(), batch, -1); err != nil {
			return playlistError(err)
		}
	}
	return nil
}

// updatePlaylist renames, describes (comment), publishes and edits a
// playlist: songIndexToRemove are 0-based positions before the edit,
// songIdToAdd are appended.
func (h *Handler) updatePlaylist(c *call, _ *response) error {
	id, err := c.id("playlistId")
	if err != nil {
		return err
	}
	var up store.PlaylistUpdate
	if v, ok := c.r.Form["name"]; ok {
		up.Name = &v[0]
	}
	if v, ok := c.r.Form["comment"]; ok {
		up.Description = &v[0]
	}
	if _, ok := c.r.Form["public"]; ok {
		pub, err := c.boolParam("public", false)
		if err != nil {
			return err
		}
		up.IsPublic = &pub
	}
	name, desc := "", ""
	if up.Name != nil {
		trimmed := strings.TrimSpace(*up.Name)
		up.Name, name = &trimmed, trimmed
		if name == "" {
			return Fail(CodeGeneric, "A playlist's name must not be empty.")
		}
	}
	if up.Description != nil {
		desc = *up.Description
	}
	if err := h.catalog.CheckPlaylist(name, desc); err != nil {
		return err
	}
	add, err := c.ids("songIdToAdd")
	if err != nil {
		return err
	}
	if len(c.r.Form["songIndexToRemove"]) > store.MaxPlaylistItems {
		return Fail(CodeGeneric, "A playlist holds at most %d songs.", store.MaxPlaylistItems)
	}
	var remove []int
	for _, v := range c.r.Form["songIndexToRemove"] {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Fail(CodeGeneric, "songIndexToRemove must be a position from 0.")
		}
		remove = append(remove, n)
	}
	if up != (store.PlaylistUpdate{}) {
		if _, err := h.store.UpdatePlaylist(c.ctx, id, c.editor(), up); err != nil {
			return playlistError(err)
		}
	}
	if len(remove) > 0 {
		items, err := h.playlistItems(c, id)
		if err != nil {
			return err
		}
		slices.Sort(remove)
		var ids []int64
		for _, i := range slices.Compact(remove) {
			if i >= len(items) {
				return Fail(CodeNotFound, "No song at index %d.", i)
			}
			ids = append(ids, items[i].ID)
		}
		if _, err := h.store.RemovePlaylistItems(c.ctx, id, c.editor(), ids); err != nil {
			return playlistError(err)
		}
	}
	return h.addSongs(c, id, add)
}

func (h *Handler) deletePlaylist(c *call, _ *response, id int64) error {
	if _, err := h.catalog.VisiblePlaylist(c.ctx, c.user, id); err != nil {
		return playlistError(err)
	}
	return playlistError(h.store.DeletePlaylist(c.ctx, id, c.editor()))
}
