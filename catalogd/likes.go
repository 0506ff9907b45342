package catalogd

import (
	"context"
	"errors"
	"net/http"
	"time"

	"riff/catalogd/store"
)

// markLiked sets Liked on songs for a logged-in caller (one query).
func (s *Server) markLiked(ctx context.Context, p principal, songs []songView) error {
	if p.UserID == 0 || len(songs) == 0 {
		return nil
	}
	ids := make([]int64, len(songs))
	for i, so := range songs {
		ids[i] = so.ID
	}
	liked, err := s.store.LikedAmong(ctx, p.UserID, ids)
	if err != nil {
		return err
	}
	for i := range songs {
		v := liked[songs[i].ID]
		songs[i].Liked = &v
	}
	return nil
}

// likeSong likes a song the caller can see (idempotent).
func (s *Server) likeSong(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := s.visibleSong(r.Context(), p, id); err != nil {
		return err
	}
	if err := s.store.LikeSong(r.Context(), p.UserID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// unlikeSong removes a like (idempotent, whatever the song's state).
func (s *Server) unlikeSong(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := s.store.UnlikeSong(r.Context(), p.UserID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type likedSongView struct {
	LikedAt time.Time `json:"liked_at"`
	Song    songView  `json:"song"`
}

// likedSongs answers the caller's liked songs, newest like first.
func (s *Server) likedSongs(w http.ResponseWriter, r *http.Request, p principal) error {
	limit, offset, _, err := pageParams(r, maxLimit, maxLimit, maxOffset)
	if err != nil {
		return err
	}
	liked, total, err := s.store.LikedSongs(r.Context(), p.UserID, limit, offset)
	if err != nil {
		return err
	}
	views := make([]likedSongView, len(liked))
	yes := true
	owned := map[int64]bool{}
	for i, l := range liked {
		sv, err := s.listedSongView(r.Context(), p, l.Song, owned)
		if err != nil {
			return err
		}
		views[i] = likedSongView{LikedAt: l.LikedAt, Song: sv}
		views[i].Song.Liked = &yes
	}
	return writeJSON(w, http.StatusOK, newPage(r, views, limit, offset, total, nil))
}

// followArtist follows an artist (idempotent).
func (s *Server) followArtist(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathInt(r, "artist_id")
	if err != nil {
		return err
	}
	if err := s.store.FollowArtist(r.Context(), p.UserID, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &apiError{kind: kindNotFound, code: "artist_not_found", field: "artist_id", detail: "No such artist.", cause: err}
		}
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// unfollowArtist stops following an artist (idempotent).
func (s *Server) unfollowArtist(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathInt(r, "artist_id")
	if err != nil {
		return err
	}
	if err := s.store.UnfollowArtist(r.Context(), p.UserID, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type followedArtistView struct {
	FollowedAt time.Time  `json:"followed_at"`
	Artist     artistView `json:"artist"`
}

// following answers the artists the caller follows, newest first.
func (s *Server) following(w http.ResponseWriter, r *http.Request, p principal) error {
	limit, offset, _, err := pageParams(r, maxLimit, maxLimit, maxOffset)
	if err != nil {
		return err
	}
	fs, total, err := s.store.FollowedArtists(r.Context(), p.UserID, limit, offset)
	if err != nil {
		return err
	}
	views := make([]followedArtistView, len(fs))
	for i, f := range fs {
		views[i] = followedArtistView{FollowedAt: f.FollowedAt, Artist: newArtistView(f.Artist)}
		views[i].Artist.Followers, views[i].Artist.PlayCount = &f.Stats.Followers, &f.Stats.Plays
	}
	return writeJSON(w, http.StatusOK, newPage(r, views, limit, offset, total, nil))
}
