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

// setRelation is the handler of an idempotent request that sets or
// clears one of the caller's relations (a like, a follow): check, if not
// nil, may refuse the id in path parameter param first; set gets the
// caller and the id, and the answer is 204.
func setRelation(param string, check func(context.Context, principal, int64) error, set func(ctx context.Context, userID, id int64) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		id, err := pathInt(r, param)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(r.Context(), p, id); err != nil {
				return err
			}
		}
		if err := set(r.Context(), p.UserID, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// canSeeSong refuses a song the caller cannot see (only those can be
// liked; unliking works whatever the song's state).
func (s *Server) canSeeSong(ctx context.Context, p principal, id int64) error {
	_, err := s.visibleSong(ctx, p, id)
	return err
}

type likedSongView struct {
	LikedAt time.Time `json:"liked_at"`
	Song    songView  `json:"song"`
}

// likedSongs answers the caller's liked songs, newest like first.
func (s *Server) likedSongs(w http.ResponseWriter, r *http.Request, p principal) error {
	owned := map[int64]bool{}
	return writeList(w, r, maxLimit, maxOffset,
		func(ctx context.Context, limit, offset int) ([]store.LikedSong, int, error) {
			return s.store.LikedSongs(ctx, p.UserID, limit, offset)
		},
		func(l store.LikedSong) (likedSongView, error) {
			sv, err := s.listedSongView(r.Context(), p, l.Song, owned)
			yes := true
			sv.Liked = &yes
			return likedSongView{LikedAt: l.LikedAt, Song: sv}, err
		})
}

// followArtist follows an artist (idempotent; setRelation).
func (s *Server) followArtist(ctx context.Context, userID, id int64) error {
	err := s.store.FollowArtist(ctx, userID, id)
	if errors.Is(err, store.ErrNotFound) {
		return &apiError{kind: kindNotFound, code: "artist_not_found", field: "artist_id", detail: "No such artist.", cause: err}
	}
	return err
}

type followedArtistView struct {
	FollowedAt time.Time  `json:"followed_at"`
	Artist     artistView `json:"artist"`
}

// following answers the artists the caller follows, newest first.
func (s *Server) following(w http.ResponseWriter, r *http.Request, p principal) error {
	return writeList(w, r, maxLimit, maxOffset,
		func(ctx context.Context, limit, offset int) ([]store.FollowedArtist, int, error) {
			return s.store.FollowedArtists(ctx, p.UserID, limit, offset)
		},
		func(f store.FollowedArtist) (followedArtistView, error) {
			v := followedArtistView{FollowedAt: f.FollowedAt, Artist: newArtistView(f.Artist)}
			v.Artist.Followers, v.Artist.PlayCount = &f.Stats.Followers, &f.Stats.Plays
			return v, nil
		})
}

// writeList answers one page of a list of the caller's: list reads the
// page (limit and offset from the query: default def, at most maxLimit and
// maxOff), and view makes each item's view.
func writeList[T, V any](w http.ResponseWriter, r *http.Request, def, maxOff int,
	list func(ctx context.Context, limit, offset int) ([]T, int, error), view func(T) (V, error)) error {
	limit, offset, _, err := pageParams(r, def, maxLimit, maxOff)
	if err != nil {
		return err
	}
	items, total, err := list(r.Context(), limit, offset)
	if err != nil {
		return err
	}
	views := make([]V, len(items))
	for i, it := range items {
		if views[i], err = view(it); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, newPage(r, views, limit, offset, total, nil))
}
