package catalogd

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"riff/catalogd/store"
)

// libraryRoutes are playlists, likes, follows and listening events.
// Playlist routes answer at the spec's paths and at their plural (or
// singular) twins.
func (s *Server) libraryRoutes() []route {
	playlists := []route{
		{"POST", "/playlist", authRequired, s.createPlaylist},
		{"GET", "/playlist/{id}", authOptional, s.getPlaylist},
		{"PATCH", "/playlist/{id}", authRequired, s.patchPlaylist},
		{"DELETE", "/playlist/{id}", authRequired, s.deletePlaylist},
		{"PUT", "/playlist/{id}/songs", authRequired, s.putPlaylistSongs},
		{"DELETE", "/playlist/{id}/songs/{songs_id}", authRequired, s.removePlaylistSong},
		{"DELETE", "/playlist/{id}/items/{item_id}", authRequired, s.removePlaylistItem},
		{"PUT", "/playlist/{id}/followers", authRequired, setRelation("id", nil, s.followPlaylist)},
		{"DELETE", "/playlist/{id}/followers", authRequired, setRelation("id", nil, s.store.UnfollowPlaylist)},
	}
	rs := playlists
	for _, rt := range playlists {
		rt.pattern = "/playlists" + strings.TrimPrefix(rt.pattern, "/playlist")
		rs = append(rs, rt)
	}
	return append(rs,
		route{"GET", "/users/me/playlists", authRequired, s.myPlaylists},
		route{"POST", "/songs/{id}/like", authRequired, setRelation("id", s.canSeeSong, s.store.LikeSong)},
		route{"DELETE", "/songs/{id}/like", authRequired, setRelation("id", nil, s.store.UnlikeSong)},
		route{"GET", "/users/me/liked-songs", authRequired, s.likedSongs},
		route{"POST", "/users/me/follow/{artist_id}", authRequired, setRelation("artist_id", nil, s.followArtist)},
		route{"DELETE", "/users/me/follow/{artist_id}", authRequired, setRelation("artist_id", nil, s.store.UnfollowArtist)},
		route{"GET", "/users/me/following", authRequired, s.following},
		route{"POST", "/events", authRequired, s.postEvents},
		route{"GET", "/users/me/recently-played", authRequired, s.recentlyPlayed},
	)
}

// pathInt parses path value name as a positive decimal id.
func pathInt(r *http.Request, name string) (int64, error) {
	v := r.PathValue(name)
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || v[0] == '+' || v[0] == '0' {
		return 0, invalidField(name, "invalid_id", "The %s in the path must be a positive integer.", name)
	}
	return n, nil
}

// pageParams reads limit (default def, at most max) and offset (at most
// maxOffset) and rejects other parameters but extra.
func pageParams(r *http.Request, def, maxLim, maxOff int, extra ...string) (limit, offset int, q map[string][]string, err error) {
	q, err = query(r, append([]string{"limit", "offset"}, extra...)...)
	if err != nil {
		return 0, 0, nil, err
	}
	if limit, err = intParam(q, "limit", def, 1, maxLim); err != nil {
		return 0, 0, nil, err
	}
	if offset, err = intParam(q, "offset", 0, 0, maxOff); err != nil {
		return 0, 0, nil, err
	}
	return limit, offset, q, nil
}

// unknownSongs is the 400 for song ids that are not (ready) songs.
func unknownSongs(err error, field string) error {
	var unknown *store.UnknownSongsError
	if !errors.As(err, &unknown) {
		return err
	}
	ids := make([]string, len(unknown.IDs))
	for i, id := range unknown.IDs {
		ids[i] = itoa(id)
	}
	noun := "song"
	if len(ids) > 1 {
		noun = "songs"
	}
	return &apiError{kind: kindInvalid, code: "unknown_songs", field: field, cause: err,
		detail: fmt.Sprintf("No such %s: %s; nothing was changed.", noun, strings.Join(ids, ", "))}
}
