package catalogd

import (
	"errors"
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"riff/catalogd/auth"
	"riff/catalogd/store"
)

// tokenResponse answers register, login and refresh.
type tokenResponse struct {
	AccessToken      string    `json:"access_token"`
	TokenType        string    `json:"token_type"`
	ExpiresIn        int       `json:"expires_in"`
	ExpiresAt        time.Time `json:"expires_at"`
	RefreshToken     string    `json:"refresh_token"`
	RefreshExpiresAt time.Time `json:"refresh_expires_at"`
	User             userView  `json:"user"`
}

const (
	maxPasswordRunes = 256
	minPasswordRunes = 8
)

type registerRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name"`
	Country     string `json:"country"`
}

func checkEmail(email string) *apiError {
	if email == "" {
		return invalidField("email", "required", "email must not be empty.")
	}
	if len(email) > 254 {
		return invalidField("email", "too_long", "email must be at most 254 characters.")
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return invalidField("email", "invalid_email", "email must be an address like ann@example.com.")
	}
	at := strings.LastIndexByte(email, '@')
	if mixedScripts(email[:at]) || mixedScripts(email[at+1:]) {
		return invalidField("email", "mixed_scripts", "email mixes letters of scripts that can be taken for one another (Latin and Cyrillic, say) in its name or its domain.")
	}
	return nil
}

// normalEmail is the form an address is checked and stored in: NFKC,
// so fullwidth and other compatibility forms ("ａｎｎ＠example.com") are
// the plain address and canonically equal spellings are one.
func normalEmail(email string) string { return norm.NFKC.String(email) }

// mixedScripts reports whether the letters of s come from scripts that do
// not go together, after Unicode TR39's "highly restrictive" level: one
// script, or Latin with Han and Hiragana/Katakana, with Han and Bopomofo,
// or with Han and Hangul. Digits, punctuation and marks (scripts Common
// and Inherited) go with anything.
func mixedScripts(s string) bool {
	seen := map[string]bool{}
	for _, r := range s {
		if r < utf8.RuneSelf && !unicode.IsLetter(r) {
			continue
		}
		for name, table := range unicode.Scripts {
			if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
				seen[name] = true
				break
			}
		}
	}
	if len(seen) <= 1 {
		return false
	}
	for _, allowed := range [][]string{{"Latin", "Han", "Hiragana", "Katakana"}, {"Latin", "Han", "Bopomofo"}, {"Latin", "Han", "Hangul"}} {
		ok := true
		for name := range seen {
			ok = ok && slices.Contains(allowed, name)
		}
		if ok {
			return false
		}
	}
	return true
}

// checkDisplayName checks a display name: 1 to 100 printable characters,
// at least one visible.
func checkDisplayName(name string) *apiError {
	if e := checkText("display_name", name, true, 100, false); e != nil {
		return e
	}
	return checkVisible("display_name", name)
}

func checkPassword(pw string) *apiError {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < minPasswordRunes:
		return invalidField("password", "too_short", "password must be at least %d characters.", minPasswordRunes)
	case n > maxPasswordRunes || len(pw) > 4*maxPasswordRunes:
		return invalidField("password", "too_long", "password must be at most %d characters.", maxPasswordRunes)
	case strings.TrimSpace(pw) == "":
		return invalidField("password", "blank_password", "password must not be only white space.")
	}
	return nil
}

// limitAttempt spends one attempt from the per-address limiter and, when
// account is not "", from the per-account one.
func (s *Server) limitAttempt(r *http.Request, account string) error {
	ok, retry, err := s.loginIP.Allow(r.Context(), s.clientIP(r))
	if err != nil {
		return err
	}
	if !ok {
		return &apiError{kind: kindRateLimited, code: "rate_limited", retryAfter: retry,
			detail: "Too many attempts from this address; wait before trying again."}
	}
	if account == "" {
		return nil
	}
	if ok, retry, err = s.loginAccount.Allow(r.Context(), account); err != nil {
		return err
	}
	if !ok {
		return &apiError{kind: kindRateLimited, code: "rate_limited", retryAfter: retry,
			detail: "Too many attempts for this account; wait before trying again."}
	}
	return nil
}

func (s *Server) register(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req registerRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	req.Email = normalEmail(req.Email)
	if e := checkEmail(req.Email); e != nil {
		return e
	}
	if e := checkPassword(req.Password); e != nil {
		return e
	}
	if s.passwords.Common(req.Password) {
		return invalidField("password", "common_password", "This password is among the most common ones; choose another.")
	}
	if e := checkDisplayName(req.DisplayName); e != nil {
		return e
	}
	if e := checkCountry(req.Country); e != nil {
		return e
	}
	if err := s.limitAttempt(r, ""); err != nil {
		return err
	}
	hash, err := s.passwords.Hash(r.Context(), req.Password)
	if err != nil {
		return err
	}
	u, err := s.store.CreateUser(r.Context(), store.NewUser{
		Email: req.Email, PasswordHash: hash, DisplayName: strings.TrimSpace(req.DisplayName), Country: req.Country,
	})
	if errors.Is(err, store.ErrConflict) {
		return &apiError{kind: kindConflict, code: "email_taken", field: "email", detail: "An account with this email exists.", cause: err}
	}
	if err != nil {
		return err
	}
	return s.startSession(w, r, u, http.StatusCreated)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req loginRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.Email == "" || len(req.Email) > 254 {
		return invalidField("email", "invalid_email", "email must be an address of at most 254 characters.")
	}
	if req.Password == "" || len(req.Password) > 4*maxPasswordRunes {
		return invalidField("password", "invalid_password", "password must be 1 to %d characters.", maxPasswordRunes)
	}
	account := store.EmailKey(req.Email)
	if err := s.limitAttempt(r, account); err != nil {
		return err
	}
	denied := newError(kindUnauthorized, "invalid_credentials", "The email or password is wrong.")
	u, err := s.store.UserByEmail(r.Context(), req.Email)
	if errors.Is(err, store.ErrNotFound) {
		s.passwords.VerifyDummy(r.Context(), req.Password) // as slow as a wrong password
		return denied
	}
	if err != nil {
		return err
	}
	ok, rehash, err := s.passwords.Verify(r.Context(), req.Password, u.PasswordHash)
	if err != nil && !errors.Is(err, auth.ErrMalformedHash) {
		return err // e.g. the request was cancelled while waiting to hash
	}
	if !ok {
		return denied
	}
	if err := s.loginAccount.Reset(r.Context(), account); err != nil {
		s.log.WarnContext(r.Context(), "login limit not reset", "err", err)
	}
	if rehash {
		if h, err := s.passwords.Hash(r.Context(), req.Password); err == nil {
			if err := s.store.SetPasswordHash(r.Context(), u.ID, h); err != nil {
				s.log.WarnContext(r.Context(), "password rehash not stored", "user", u.ID, "err", err)
			}
		}
	}
	return s.startSession(w, r, u, http.StatusOK)
}

// startSession opens a refresh-token family for u and answers the tokens.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u store.User, status int) error {
	refresh, hash, err := auth.NewRefreshToken()
	if err != nil {
		return err
	}
	sess, err := s.store.CreateSession(r.Context(), u.ID, hash, s.now().Add(s.cfg.RefreshTTL))
	if err != nil {
		return err
	}
	return s.answerTokens(w, u, sess, refresh, status)
}

func (s *Server) answerTokens(w http.ResponseWriter, u store.User, sess store.Session, refresh string, status int) error {
	access, exp, err := s.access.Issue(auth.AccessClaims{UserID: u.ID, SessionID: sess.FamilyID, Tier: u.Tier, Role: u.Role})
	if err != nil {
		return err
	}
	return writeJSON(w, status, tokenResponse{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.access.TTL() / time.Second), ExpiresAt: exp,
		RefreshToken: refresh, RefreshExpiresAt: sess.ExpiresAt, User: privateUser(u),
	})
}

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refreshToken reads the refresh_token of a refresh or logout body.
func (s *Server) refreshToken(w http.ResponseWriter, r *http.Request) (string, error) {
	var req refreshRequest
	if err := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); err != nil {
		return "", err
	}
	if req.RefreshToken == "" {
		return "", invalidField("refresh_token", "required", "refresh_token must not be empty.")
	}
	return req.RefreshToken, nil
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request, _ principal) error {
	token, err := s.refreshToken(w, r)
	if err != nil {
		return err
	}
	invalid := newError(kindUnauthorized, "invalid_refresh_token", "The refresh token is not valid; log in again.")
	oldHash, ok := auth.HashRefreshToken(token)
	if !ok {
		return invalid
	}
	next, newHash, err := auth.NewRefreshToken()
	if err != nil {
		return err
	}
	sess, err := s.store.RotateRefresh(r.Context(), oldHash, newHash, s.now().Add(s.cfg.RefreshTTL), s.cfg.RefreshGrace)
	switch {
	case errors.Is(err, store.ErrTokenReused):
		s.obs.CountError("refresh_token_reused")
		s.log.WarnContext(r.Context(), "refresh token reused: session revoked", "user", sess.UserID, "session", sess.FamilyID,
			"remote", s.clientIP(r))
		return &apiError{kind: kindUnauthorized, code: "refresh_token_reused", cause: err,
			detail: "This refresh token was already used; the session has been ended. Log in again."}
	case errors.Is(err, store.ErrTokenInvalid):
		invalid.cause = err
		return invalid
	case err != nil:
		return err
	}
	// Tier and role are read afresh, so a refresh picks up changes.
	u, err := s.store.UserByID(r.Context(), sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return invalid
	}
	if err != nil {
		return err
	}
	return s.answerTokens(w, u, sess, next, http.StatusOK)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ principal) error {
	token, err := s.refreshToken(w, r)
	if err != nil {
		return err
	}
	// Unknown or malformed tokens end no session, and saying so would tell
	// a guesser nothing useful: always 204.
	if hash, ok := auth.HashRefreshToken(token); ok {
		if err := s.store.RevokeSession(r.Context(), hash); err != nil {
			return err
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keys serves the public keys: the access-token key and the playback keys.
func (s *Server) keys(w http.ResponseWriter, r *http.Request, _ principal) error {
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(s.jwks)
	return err
}
