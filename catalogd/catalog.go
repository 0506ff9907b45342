package catalogd

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"riff/catalogd/store"
)

// List limits: at most this many items per page, and offsets at most this
// deep (deeper pages cost the database more and no listener reads them).
const (
	maxLimit  = 50
	maxOffset = 10_000
)

type createArtistRequest struct {
	Name     string `json:"name"`
	Bio      string `json:"bio"`
	ImageURL string `json:"image_url"`
}

func (s *Server) createArtist(w http.ResponseWriter, r *http.Request, p principal) error {
	var req createArtistRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if e := checkArtistName(req.Name); e != nil {
		return e
	}
	if e := checkText("bio", req.Bio, false, 4000, true); e != nil {
		return e
	}
	if e := checkURL("image_url", req.ImageURL); e != nil {
		return e
	}
	a, err := s.store.CreateArtist(r.Context(), p.UserID, store.NewArtist{
		Name: strings.TrimSpace(req.Name), Bio: req.Bio, ImageURL: req.ImageURL,
	})
	if err != nil {
		return nameTaken(err)
	}
	w.Header().Set("Location", "/artists/"+itoa(a.ID))
	return writeJSON(w, http.StatusCreated, newArtistView(a))
}

func (s *Server) getArtist(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	a, err := s.store.ArtistByID(r.Context(), id)
	if err != nil {
		return err
	}
	st, err := s.store.ArtistStats(r.Context(), id)
	if err != nil {
		return err
	}
	v := newArtistView(a)
	v.Followers, v.PlayCount = &st.Followers, &st.Plays
	return writeJSON(w, http.StatusOK, v)
}

// ownedArtist loads artist id and checks that p may change it (its owner
// or an admin).
func (s *Server) ownedArtist(ctx context.Context, p principal, id int64, field string) (store.Artist, error) {
	a, err := s.store.ArtistByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) && field != "" {
		return a, &apiError{kind: kindNotFound, code: "artist_not_found", field: field, detail: "No such artist.", cause: err}
	}
	if err != nil {
		return a, err
	}
	if a.OwnerUserID != p.UserID && p.Role != store.RoleAdmin {
		return a, newError(kindForbidden, "not_owner", "Only the artist's owner may change it.")
	}
	return a, nil
}

// checkArtistName checks an artist name: 1 to 200 printable characters,
// at least one of them visible (see store.NameKey).
func checkArtistName(name string) *apiError {
	if e := checkText("name", name, true, 200, false); e != nil {
		return e
	}
	return checkVisible("name", name)
}

// checkVisible refuses a name with nothing visible in it (only white
// space, zero-width and other default-ignorable characters).
func checkVisible(field, name string) *apiError {
	if store.NameKey(name) == "" {
		return invalidField(field, "no_visible_characters", "%s must contain a visible character.", field)
	}
	return nil
}

// nameTaken answers a name conflict as 409 name_taken.
func nameTaken(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return &apiError{kind: kindConflict, code: "name_taken", field: "name", cause: err,
			detail: "Another artist has this name, or one that looks the same (case, width and invisible characters aside)."}
	}
	return err
}

type patchArtistRequest struct {
	Name     optional[string] `json:"name"`
	Bio      optional[string] `json:"bio"`
	ImageURL optional[string] `json:"image_url"`
}

func (s *Server) patchArtist(w http.ResponseWriter, r *http.Request, p principal) error {
	var req patchArtistRequest
	id, err := s.pathIDAndBody(w, r, &req)
	if err != nil {
		return err
	}
	var pc patch
	up := store.ArtistUpdate{
		Name:     pc.name("name", req.Name, checkArtistName),
		Bio:      patchField(&pc, req.Bio, func(v string) *apiError { return checkText("bio", v, false, 4000, true) }),
		ImageURL: patchField(&pc, req.ImageURL, func(v string) *apiError { return checkURL("image_url", v) }),
	}
	if pc.err != nil {
		return pc.err
	}
	if _, err := s.ownedArtist(r.Context(), p, id, ""); err != nil {
		return err
	}
	a, err := s.store.UpdateArtist(r.Context(), id, up)
	if err != nil {
		return nameTaken(err)
	}
	return writeJSON(w, http.StatusOK, newArtistView(a))
}

func (s *Server) artistSongs(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "limit", "offset")
	if err != nil {
		return err
	}
	limit, err := intParam(q, "limit", 50, 1, maxLimit)
	if err != nil {
		return err
	}
	offset, err := intParam(q, "offset", 0, 0, maxOffset)
	if err != nil {
		return err
	}
	if _, err := s.store.ArtistByID(r.Context(), id); err != nil {
		return err
	}
	songs, total, err := s.store.ArtistSongs(r.Context(), id, limit, offset)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, newPage(r, s.viewSongs(songs), limit, offset, total, nil))
}

type createAlbumRequest struct {
	ArtistID    int64  `json:"artist_id"`
	Title       string `json:"title"`
	Type        string `json:"type"`
	ReleaseDate string `json:"release_date"`
	CoverURL    string `json:"cover_url"`
}

func checkAlbumType(t string) *apiError {
	switch t {
	case store.AlbumTypeAlbum, store.AlbumTypeSingle, store.AlbumTypeEP:
		return nil
	}
	return invalidField("type", "invalid_enum", "type must be album, single or ep.")
}

func (s *Server) createAlbum(w http.ResponseWriter, r *http.Request, p principal) error {
	var req createAlbumRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.ArtistID <= 0 {
		return invalidField("artist_id", "required", "artist_id must be the id of an artist you own.")
	}
	if e := checkText("title", req.Title, true, 200, false); e != nil {
		return e
	}
	if req.Type == "" {
		req.Type = store.AlbumTypeAlbum
	}
	if e := checkAlbumType(req.Type); e != nil {
		return e
	}
	if e := checkDate("release_date", req.ReleaseDate); e != nil {
		return e
	}
	if e := checkURL("cover_url", req.CoverURL); e != nil {
		return e
	}
	if _, err := s.ownedArtist(r.Context(), p, req.ArtistID, "artist_id"); err != nil {
		return err
	}
	al, err := s.store.CreateAlbum(r.Context(), store.NewAlbum{ArtistID: req.ArtistID, Title: strings.TrimSpace(req.Title),
		Type: req.Type, ReleaseDate: req.ReleaseDate, CoverURL: req.CoverURL})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/albums/"+itoa(al.ID))
	v := s.viewAlbum(al)
	v.Songs = &[]songView{}
	return writeJSON(w, http.StatusCreated, v)
}

// getAlbum answers the album with its ready songs in track order; its
// owner (and admins) see songs of every status.
func (s *Server) getAlbum(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	al, err := s.store.AlbumByID(r.Context(), id)
	if err != nil {
		return err
	}
	readyOnly := true
	if p.UserID != 0 {
		if _, err := s.ownedArtist(r.Context(), p, al.ArtistID, ""); err == nil {
			readyOnly = false
		}
	}
	songs, err := s.store.AlbumSongs(r.Context(), id, readyOnly)
	if err != nil {
		return err
	}
	v := s.viewAlbum(al)
	views := s.viewSongs(songs)
	if err := s.markLiked(r.Context(), p, views); err != nil {
		return err
	}
	v.Songs = &views
	return writeJSON(w, http.StatusOK, v)
}

type patchAlbumRequest struct {
	Title       optional[string] `json:"title"`
	Type        optional[string] `json:"type"`
	ReleaseDate optional[string] `json:"release_date"`
	CoverURL    optional[string] `json:"cover_url"`
}

func (s *Server) patchAlbum(w http.ResponseWriter, r *http.Request, p principal) error {
	var req patchAlbumRequest
	id, err := s.pathIDAndBody(w, r, &req)
	if err != nil {
		return err
	}
	var pc patch
	up := store.AlbumUpdate{
		Title:       pc.name("title", req.Title, func(v string) *apiError { return checkText("title", v, true, 200, false) }),
		Type:        patchField(&pc, req.Type, checkAlbumType),
		ReleaseDate: patchField(&pc, req.ReleaseDate, func(v string) *apiError { return checkDate("release_date", v) }),
		CoverURL:    patchField(&pc, req.CoverURL, func(v string) *apiError { return checkURL("cover_url", v) }),
	}
	if pc.err != nil {
		return pc.err
	}
	al, err := s.store.AlbumByID(r.Context(), id)
	if err != nil {
		return err
	}
	if _, err := s.ownedArtist(r.Context(), p, al.ArtistID, ""); err != nil {
		return err
	}
	al, err = s.store.UpdateAlbum(r.Context(), id, up)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.viewAlbum(al))
}
