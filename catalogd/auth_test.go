package catalogd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"riff/catalogd/auth"
	"riff/catalogd/store/storetest"
)

func TestRegisterLoginRefreshLogout(t *testing.T) {
	e := newEnv(t)
	ann := e.register("Ann@Example.com", "Ann")
	if ann.TokenType != "Bearer" || ann.ExpiresIn != 900 || ann.AccessToken == "" || ann.RefreshToken == "" {
		t.Errorf("register answer = %+v", ann.tokenResponse)
	}
	if ann.User.Email != "Ann@Example.com" || ann.User.Tier != "free" || ann.User.Role != "listener" {
		t.Errorf("registered user = %+v", ann.User)
	}
	if !ann.ExpiresAt.Equal(e.clock.Now().Add(15 * time.Minute)) {
		t.Errorf("expires_at %v", ann.ExpiresAt)
	}

	// The email is taken case-insensitively.
	r := e.do(request{method: "POST", path: "/auth/register", body: map[string]string{
		"email": "ann@example.COM", "password": "long enough", "display_name": "Imposter"}})
	wantStatus(t, r, http.StatusConflict, "email_taken")

	// Login with the email in another case.
	r = e.do(request{method: "POST", path: "/auth/login", body: map[string]string{"email": "ANN@example.com", "password": ann.password}})
	wantStatus(t, r, http.StatusOK, "")
	var login tokenResponse
	r.decode(t, &login)
	if login.User.ID != ann.User.ID || login.RefreshToken == ann.RefreshToken {
		t.Errorf("login = %+v", login)
	}
	me := e.get("/users/me", login.AccessToken)
	wantStatus(t, me, http.StatusOK, "")
	if me.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("/users/me Cache-Control %q", me.Header.Get("Cache-Control"))
	}

	// Refresh rotates.
	r = e.do(request{method: "POST", path: "/auth/refresh", body: map[string]string{"refresh_token": login.RefreshToken}})
	wantStatus(t, r, http.StatusOK, "")
	var next tokenResponse
	r.decode(t, &next)
	if next.RefreshToken == login.RefreshToken || next.AccessToken == "" {
		t.Fatalf("refresh = %+v", next)
	}
	wantStatus(t, e.get("/users/me", next.AccessToken), http.StatusOK, "")

	// Logout ends the session: its refresh token stops working.
	r = e.do(request{method: "POST", path: "/auth/logout", body: map[string]string{"refresh_token": next.RefreshToken}})
	wantStatus(t, r, http.StatusNoContent, "")
	r = e.do(request{method: "POST", path: "/auth/refresh", body: map[string]string{"refresh_token": next.RefreshToken}})
	wantStatus(t, r, http.StatusUnauthorized, "invalid_refresh_token")
	// The registration session is separate and still works.
	r = e.do(request{method: "POST", path: "/auth/refresh", body: map[string]string{"refresh_token": ann.RefreshToken}})
	wantStatus(t, r, http.StatusOK, "")
	// Logging out with garbage is a quiet no-op.
	r = e.do(request{method: "POST", path: "/auth/logout", body: map[string]string{"refresh_token": "garbage"}})
	wantStatus(t, r, http.StatusNoContent, "")
}

func TestRegisterValidation(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		body       string
		field      string
		code       string
		wantStatus int
	}{
		{`{"email":"not-an-email","password":"long enough","display_name":"x"}`, "email", "invalid_email", 400},
		{`{"email":"Ann <ann@example.com>","password":"long enough","display_name":"x"}`, "email", "invalid_email", 400},
		{`{"email":"ann@example.com","password":"short","display_name":"x"}`, "password", "too_short", 400},
		{`{"email":"ann@example.com","password":"` + strings.Repeat("p", 257) + `","display_name":"x"}`, "password", "too_long", 400},
		{`{"email":"ann@example.com","password":"long enough","display_name":""}`, "display_name", "required", 400},
		{`{"email":"ann@example.com","password":"long enough","display_name":"   "}`, "display_name", "required", 400},
		{`{"email":"ann@example.com","password":"long enough","display_name":"` + strings.Repeat("é", 101) + `"}`, "display_name", "too_long", 400},
		{`{"email":"ann@example.com","password":"long enough","display_name":"a\u0000b"}`, "display_name", "invalid_characters", 400},
		{`{"email":"ann@example.com","password":"long enough","display_name":"a\u202eb"}`, "display_name", "invalid_characters", 400},
		{`{"email":"ann@example.com","password":"long enough","display_name":"x","country":"se"}`, "country", "invalid_country", 400},
		{`{"email":"ann@example.com","password":"long enough","display_name":"x","admin":true}`, "admin", "unknown_field", 400},
		{`{"email":"ann@example.com","password":12345678,"display_name":"x"}`, "password", "invalid_type", 400},
	} {
		r := e.do(request{method: "POST", path: "/auth/register", body: tc.body})
		wantStatus(t, r, tc.wantStatus, tc.code)
		if p := r.problem(); p.Field != tc.field {
			t.Errorf("register %s: field %q, want %q", tc.body, p.Field, tc.field)
		}
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	// Real (if small) argon2 cost, so that timing is dominated by hashing.
	e := newEnv(t, func(c *Config, p *auth.Argon2Params) {
		*p = auth.Argon2Params{MemoryKiB: 4096, Time: 2, Threads: 1}
		c.LoginAccountBurst = 1000
	})
	e.register("bob@example.com", "Bob")
	login := func(email, pw string) (response, time.Duration) {
		start := time.Now()
		r := e.do(request{method: "POST", path: "/auth/login", body: map[string]string{"email": email, "password": pw}})
		return r, time.Since(start)
	}
	var wrong, unknown []time.Duration
	for range 7 {
		rw, dw := login("bob@example.com", "wrong password")
		ru, du := login("nobody@example.com", "wrong password")
		wantStatus(t, rw, http.StatusUnauthorized, "invalid_credentials")
		wantStatus(t, ru, http.StatusUnauthorized, "invalid_credentials")
		if rw.problem().Detail != ru.problem().Detail {
			t.Errorf("different details: %q vs %q", rw.problem().Detail, ru.problem().Detail)
		}
		wrong, unknown = append(wrong, dw), append(unknown, du)
	}
	// The fastest of each: a busy machine only ever adds time, so the
	// minimum is the cost of the code path. Without the dummy verification
	// an unknown user's login is ~100× faster (no Argon2 at all), far
	// outside these bounds; with it both are one Argon2 computation.
	mw, mu := slices.Min(wrong), slices.Min(unknown)
	if ratio := float64(mu) / float64(mw); ratio < 0.33 || ratio > 3 {
		t.Errorf("fastest login time: unknown user %v, wrong password %v (ratio %.2f): want similar", mu, mw, ratio)
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *auth.Argon2Params) {
		c.LoginAccountBurst = 3
		c.LoginIPBurst = 5
		c.LoginWindow = 3 * time.Minute
		c.ClientIPHeader = "X-Forwarded-For"
	})
	carol := e.register("carol@example.com", "Carol")
	attempt := func(email, pw, ip string) response {
		return e.do(request{method: "POST", path: "/auth/login", body: map[string]string{"email": email, "password": pw},
			header: map[string]string{"X-Forwarded-For": "203.0.113.9, " + ip}})
	}
	for range 3 {
		wantStatus(t, attempt("carol@example.com", "nope nope", "198.51.100.1"), http.StatusUnauthorized, "invalid_credentials")
	}
	// The account is locked, even with the right password and from elsewhere.
	r := attempt("carol@example.com", carol.password, "198.51.100.2")
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra != 60 {
		t.Errorf("Retry-After = %q, want 60", r.Header.Get("Retry-After"))
	}
	// Other accounts are fine.
	wantStatus(t, attempt("dave@example.com", "whatever1", "198.51.100.2"), http.StatusUnauthorized, "invalid_credentials")
	// A minute later one more attempt is allowed, and succeeds.
	e.clock.Advance(time.Minute)
	wantStatus(t, attempt("carol@example.com", carol.password, "198.51.100.3"), http.StatusOK, "")

	// Per address: 5 attempts from one address, whatever the account.
	for i := range 5 {
		attempt("x"+strconv.Itoa(i)+"@example.com", "whatever1", "192.0.2.7")
	}
	r = attempt("y@example.com", "whatever1", "192.0.2.7")
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Registration counts against the address too.
	r = e.do(request{method: "POST", path: "/auth/register", body: map[string]string{
		"email": "z@example.com", "password": "long enough", "display_name": "Z"},
		header: map[string]string{"X-Forwarded-For": "192.0.2.7"}})
	wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
}

func TestAccessTokensRefused(t *testing.T) {
	e := newEnv(t)
	u := e.register("eve@example.com", "Eve")
	claims := map[string]any{"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": strconv.FormatInt(u.User.ID, 10),
		"iat": e.clock.Now().Unix(), "exp": e.clock.Now().Add(time.Hour).Unix(), "typ": "access"}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, _ := (&jwt.Token{Header: map[string]any{"alg": "EdDSA", "typ": auth.TokenType, "kid": "test-access"},
		Claims: jwt.MapClaims(claims), Method: jwt.SigningMethodEdDSA}).SignedString(otherKey)
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]any{"alg": "none", "typ": auth.TokenType, "kid": "test-access"})
	c, _ := json.Marshal(claims)
	algNone := enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "."

	for _, tc := range []struct {
		name, header, code string
	}{
		{"none", "", "unauthenticated"},
		{"basic", "Basic YTpi", "invalid_token"},
		{"empty bearer", "Bearer ", "invalid_token"},
		{"garbage", "Bearer not-a-token", "invalid_token"},
		{"forged", "Bearer " + forged, "invalid_token"},
		{"alg none", "Bearer " + algNone, "invalid_token"},
	} {
		hdr := map[string]string{}
		if tc.header != "" {
			hdr["Authorization"] = tc.header
		}
		r := e.do(request{method: "GET", path: "/users/me", header: hdr})
		wantStatus(t, r, http.StatusUnauthorized, tc.code)
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, r.Header.Get("WWW-Authenticate"))
		}
		if strings.Contains(string(r.body), "signature") || strings.Contains(string(r.body), "kid") {
			t.Errorf("%s: internal error text leaked: %s", tc.name, r.body)
		}
	}
	// Expiry.
	wantStatus(t, e.get("/users/me", u.AccessToken), http.StatusOK, "")
	e.clock.Advance(16 * time.Minute)
	r := e.get("/users/me", u.AccessToken)
	wantStatus(t, r, http.StatusUnauthorized, "token_expired")
	if !strings.Contains(r.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("expired: WWW-Authenticate %q", r.Header.Get("WWW-Authenticate"))
	}
	// A bad token on an optional-auth route is refused too (so the client refreshes).
	wantStatus(t, e.get("/songs/1", u.AccessToken), http.StatusUnauthorized, "token_expired")
}

func TestPlaybackTokenIsNotAnAccessToken(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	var song songView
	r := e.get("/songs/"+itoa(f.ready.ID), f.owner.AccessToken)
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &song)
	// /t/{token}/...
	rest := strings.TrimPrefix(song.HLSURL, "https://edge.example/t/")
	playToken, _, _ := strings.Cut(rest, "/")
	wantStatus(t, e.get("/users/me", playToken), http.StatusUnauthorized, "invalid_token")
}

func TestRefreshReuseRevokesFamily(t *testing.T) {
	e := newEnv(t)
	u := e.register("frank@example.com", "Frank")
	refresh := func(tok string) response {
		return e.do(request{method: "POST", path: "/auth/refresh", body: map[string]string{"refresh_token": tok}})
	}
	r1 := refresh(u.RefreshToken)
	wantStatus(t, r1, http.StatusOK, "")
	var t1 tokenResponse
	r1.decode(t, &t1)

	// Lost response: the same token again within the grace window works
	// and yields a fresh pair; the first successor is retired.
	e.clock.Advance(2 * time.Second)
	r2 := refresh(u.RefreshToken)
	wantStatus(t, r2, http.StatusOK, "")
	var t2 tokenResponse
	r2.decode(t, &t2)

	// Outside the grace window, reuse ends the session.
	e.clock.Advance(time.Minute)
	wantStatus(t, refresh(u.RefreshToken), http.StatusUnauthorized, "refresh_token_reused")
	wantStatus(t, refresh(t2.RefreshToken), http.StatusUnauthorized, "invalid_refresh_token")
	wantStatus(t, refresh(t1.RefreshToken), http.StatusUnauthorized, "invalid_refresh_token")
	if !strings.Contains(e.logs.String(), "refresh token reused") {
		t.Error("reuse not logged")
	}
	// Unknown and malformed tokens.
	wantStatus(t, refresh("x"), http.StatusUnauthorized, "invalid_refresh_token")
	wantStatus(t, refresh(strings.Repeat("A", 43)), http.StatusUnauthorized, "invalid_refresh_token")
}

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	r := e.get("/.well-known/jwks.json", "")
	wantStatus(t, r, http.StatusOK, "")
	var set struct {
		Keys []struct{ Kid, Kty, Crv, Alg, X string } `json:"keys"`
	}
	r.decode(t, &set)
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
		if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.X == "" {
			t.Errorf("key %+v", k)
		}
	}
	if !slices.Equal(kids, []string{"test-play", "test-access"}) {
		t.Errorf("kids = %v", kids)
	}
	if strings.Contains(string(r.body), `"d"`) {
		t.Error("JWKS contains a private key")
	}
}

// TestLoginLimitAcrossInstances (issue 15, item 3): two catalogd on one
// database share the login limits: 3 attempts spread over both spend the
// account's burst, and the 4th is refused with 429 on either.
func TestLoginLimitAcrossInstances(t *testing.T) {
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			dsn := "file:" + filepath.Join(t.TempDir(), "riff.db")
			if db == "postgres" {
				dsn = storetest.PostgresDSN(t)
			}
			tweak := func(c *Config, _ *auth.Argon2Params) {
				c.LoginAccountBurst, c.LoginIPBurst, c.LoginWindow = 3, 1000, 3*time.Minute
			}
			a, b := newEnvDB(t, dsn, tweak), newEnvDB(t, dsn, tweak)
			erin := a.register("erin@example.com", "Erin")
			login := func(e *env, pw string) response {
				return e.do(request{method: "POST", path: "/auth/login", body: map[string]string{"email": "erin@example.com", "password": pw}})
			}
			wantStatus(t, login(a, "wrong wrong"), http.StatusUnauthorized, "invalid_credentials")
			wantStatus(t, login(b, "wrong wrong"), http.StatusUnauthorized, "invalid_credentials")
			wantStatus(t, login(a, "wrong wrong"), http.StatusUnauthorized, "invalid_credentials")
			for _, e := range []*env{a, b} {
				r := login(e, erin.password)
				wantStatus(t, r, http.StatusTooManyRequests, "rate_limited")
				if r.Header.Get("Retry-After") != "60" {
					t.Errorf("Retry-After = %q, want 60", r.Header.Get("Retry-After"))
				}
			}
			// A minute on (both clocks), one attempt is back, on either.
			a.clock.Advance(time.Minute)
			b.clock.Advance(time.Minute)
			wantStatus(t, login(b, erin.password), http.StatusOK, "")
		})
	}
}
