package catalogd

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"riff/catalogd/store"
	"riff/catalogd/subsonic"
	"riff/internal/blobkey"
)

// The Subsonic API (package subsonic) is served at /rest/*. This file is
// its side in catalogd: subsonicCatalog gives it the rules the JSON API
// applies (the same functions), and the routes under
// /users/me/subsonic/ let a user create and revoke the API keys and app
// passwords Subsonic apps log in with.

// newSubsonic builds the /rest/* handler of s. Without a key (tests) app
// passwords are sealed with a random one.
func newSubsonic(s *Server, cfg Config, d Deps) (*subsonic.Handler, error) {
	key := d.SubsonicKey
	if key == nil {
		key = make([]byte, 32)
		rand.Read(key)
	}
	return subsonic.New(subsonic.Config{ServerVersion: "riff", AllowPlain: cfg.SubsonicAllowPlain, MaxBodyBytes: cfg.MaxBodyBytes},
		subsonic.Deps{Logger: s.log, Store: s.store, Catalog: subsonicCatalog{s}, Key: key, Now: s.now})
}

// subsonicCatalog implements subsonic.Catalog with the Server's rules.
type subsonicCatalog struct{ s *Server }

func subsonicPrincipal(u subsonic.User) principal {
	return principal{UserID: u.ID, Tier: u.Tier, Role: u.Role}
}

// subsonicError turns an API error into the Subsonic error of its kind.
func subsonicError(err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	code := subsonic.CodeGeneric
	switch ae.kind {
	case kindNotFound:
		code = subsonic.CodeNotFound
	case kindForbidden, kindUnauthorized:
		code = subsonic.CodeNotAuthorized
	}
	msg := ae.detail
	if ae.field != "" {
		msg = ae.field + ": " + msg
	}
	return subsonic.Fail(code, "%s", msg)
}

func (c subsonicCatalog) VisibleSong(ctx context.Context, u subsonic.User, id int64) (store.Song, error) {
	so, err := c.s.visibleSong(ctx, subsonicPrincipal(u), id)
	return so, subsonicError(err)
}

func (c subsonicCatalog) VisiblePlaylist(ctx context.Context, u subsonic.User, id int64) (store.PlaylistDetail, error) {
	pl, err := c.s.visiblePlaylist(ctx, subsonicPrincipal(u), id)
	return pl, subsonicError(err)
}

func (c subsonicCatalog) CheckPlaylist(name, description string) error {
	if name != "" {
		if e := checkPlaylistName(name); e != nil {
			return subsonicError(e)
		}
	}
	if e := checkPlaylistDescription(description); e != nil {
		return subsonicError(e)
	}
	return nil
}

func (c subsonicCatalog) SearchQuery(text string) (store.Query, error) {
	if e := checkSearchText(text); e != nil {
		return store.Query{}, subsonicError(e)
	}
	return store.ParseQuery(text), nil
}

// ladder is the bitrates every song is packaged at, lowest first.
var ladder = []int{64, 128, 320}

func (c subsonicCatalog) PlaybackURL(u subsonic.User, so store.Song, m subsonic.Media, maxKbps int) (string, error) {
	p := subsonicPrincipal(u)
	if m == subsonic.MediaMaster {
		token, prefix, _, _, err := c.s.playbackToken(p, so)
		if err != nil {
			return "", err
		}
		base, err := c.s.subsonicBase(p, so)
		if err != nil {
			return "", err
		}
		return base + "/t/" + token + "/" + prefix + blobkey.MasterName, nil
	}
	want := ladder[len(ladder)-1]
	if maxKbps > 0 {
		want = ladder[0]
		for _, k := range ladder {
			if k <= maxKbps {
				want = k
			}
		}
	}
	format := blobkey.FormatOgg
	if m == subsonic.MediaAAC {
		format = blobkey.FormatAAC
	}
	ctx, cancel := context.WithTimeout(context.Background(), subsonicRegionTimeout)
	defer cancel()
	return c.s.renditionURL(ctx, nil, p, so, format, want)
}

func (c subsonicCatalog) LimitAttempt(r *http.Request, account string) time.Duration {
	var ae *apiError
	if err := c.s.limitAttempt(r, account); errors.As(err, &ae) {
		return max(ae.retryAfter, time.Second)
	}
	return 0
}

func (c subsonicCatalog) ClientIP(r *http.Request) string { return c.s.clientIP(r) }

// TLS: the connection is TLS, or a trusted load balancer (one whose
// client address header is configured) says it received TLS.
func (c subsonicCatalog) TLS(r *http.Request) bool {
	return r.TLS != nil || (c.s.cfg.ClientIPHeader != "" && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https"))
}

func (c subsonicCatalog) CoverURL(artistID, albumID int64, hash, link string, size int) string {
	url, sizes := c.s.coverURLs(artistID, albumID, hash, link)
	if size <= 0 || sizes == nil {
		return url
	}
	for _, n := range blobkey.CoverSizes { // ascending
		if n >= size {
			return sizes[strconv.Itoa(n)]
		}
	}
	return sizes[strconv.Itoa(blobkey.CoverSizes[len(blobkey.CoverSizes)-1])]
}

// Managing the credentials: /users/me/subsonic/api-keys and
// /users/me/subsonic/app-passwords.

func (s *Server) subsonicRoutes() []route {
	return []route{
		{"GET", "/users/me/subsonic/api-keys", authRequired, s.listSubsonicCredentials(true)},
		{"POST", "/users/me/subsonic/api-keys", authRequired, s.createSubsonicCredential(true)},
		{"DELETE", "/users/me/subsonic/api-keys/{id}", authRequired, s.revokeSubsonicCredential(true)},
		{"GET", "/users/me/subsonic/app-passwords", authRequired, s.listSubsonicCredentials(false)},
		{"POST", "/users/me/subsonic/app-passwords", authRequired, s.createSubsonicCredential(false)},
		{"DELETE", "/users/me/subsonic/app-passwords/{id}", authRequired, s.revokeSubsonicCredential(false)},
	}
}

// subsonicCredentialView is an API key or app password; Key or Password
// is set only in the answer that creates it (the only time it is shown),
// Username with app passwords (what apps ask for with them).
type subsonicCredentialView struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Key       string    `json:"key,omitempty"`
	Password  string    `json:"password,omitempty"`
	Username  string    `json:"username,omitempty"`
}

type subsonicCredentialList struct {
	Items []subsonicCredentialView `json:"items"`
}

func (s *Server) listSubsonicCredentials(apiKey bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		if _, err := query(r); err != nil {
			return err
		}
		cs, err := s.subsonic.Credentials(r.Context(), p.UserID, apiKey)
		if err != nil {
			return err
		}
		out := subsonicCredentialList{Items: make([]subsonicCredentialView, len(cs))}
		for i, c := range cs {
			out.Items[i] = subsonicCredentialView{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt}
		}
		return writeJSON(w, http.StatusOK, out)
	}
}

type subsonicCredentialRequest struct {
	Name string `json:"name"`
}

func (s *Server) createSubsonicCredential(apiKey bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		var req subsonicCredentialRequest
		if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
			return err
		}
		if e := checkText("name", req.Name, true, 100, false); e != nil {
			return e
		}
		c, err := s.subsonic.CreateCredential(r.Context(), p.UserID, apiKey, strings.TrimSpace(req.Name))
		if errors.Is(err, store.ErrTooMany) {
			return &apiError{kind: kindConflict, code: "too_many_credentials", cause: err,
				detail: "You hold the most allowed; revoke one first."}
		}
		if err != nil {
			return err
		}
		v := subsonicCredentialView{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt}
		if apiKey {
			v.Key = c.Secret
		} else {
			u, err := s.store.UserByID(r.Context(), p.UserID)
			if err != nil {
				return err
			}
			v.Password, v.Username = c.Secret, u.Email
		}
		w.Header().Set("Cache-Control", "no-store")
		return writeJSON(w, http.StatusCreated, v)
	}
}

func (s *Server) revokeSubsonicCredential(apiKey bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		id, err := pathID(r)
		if err != nil {
			return err
		}
		if err := s.subsonic.RevokeCredential(r.Context(), p.UserID, apiKey, id); err != nil {
			return err // ErrNotFound: 404
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
