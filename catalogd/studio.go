package catalogd

import "net/http"

// studioRoutes are the reads the web player's artist studio and artist
// pages need besides the core ones: which artists the caller owns, and an
// artist's albums.
func (s *Server) studioRoutes() []route {
	return []route{
		{"GET", "/users/me/artists", authRequired, s.myArtists},
		{"GET", "/artists/{id}/albums", authNone, s.artistAlbums},
	}
}

// myArtists answers the artists the caller owns, oldest first, as one
// page.
func (s *Server) myArtists(w http.ResponseWriter, r *http.Request, p principal) error {
	if _, err := query(r); err != nil {
		return err
	}
	artists, err := s.store.ArtistsOwnedBy(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	views := make([]artistView, len(artists))
	for i, a := range artists {
		views[i] = newArtistView(a)
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, wholePage(r, views))
}

// artistAlbums answers an artist's albums, newest release first, as one
// page.
func (s *Server) artistAlbums(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	if _, err := s.store.ArtistByID(r.Context(), id); err != nil {
		return err
	}
	albums, err := s.store.AlbumsByArtist(r.Context(), id)
	if err != nil {
		return err
	}
	views := make([]albumView, len(albums))
	for i, al := range albums {
		views[i] = s.viewAlbum(al)
	}
	return writeJSON(w, http.StatusOK, wholePage(r, views))
}

// wholePage is a list answered whole, in the pagination envelope.
func wholePage[T any](r *http.Request, items []T) page[T] {
	return newPage(r, items, max(len(items), 1), 0, len(items), nil)
}
