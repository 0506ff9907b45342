package catalogd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/store"
	"riff/internal/obs"
	"riff/internal/playtoken"
	"riff/internal/testrun"
)

// testClock is the settable clock shared by the server, its tokens and
// the store.
type testClock = testrun.Clock

// env is a catalogd on a real listener with a SQLite store in a temp dir.
type env struct {
	t      testing.TB
	url    string
	srv    *Server
	store  *store.Store
	clock  *testClock
	signer *playtoken.Signer
	logs   *testrun.LockedBuffer
}

// testArgon2 keeps password hashing cheap in tests.
var testArgon2 = auth.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}

func newEnv(t testing.TB, tweak ...func(*Config, *auth.Argon2Params)) *env {
	t.Helper()
	return newEnvDB(t, "file:"+filepath.Join(t.TempDir(), "riff.db"), tweak...)
}

// newEnvDB is newEnv on the database dsn.
func newEnvDB(t testing.TB, dsn string, tweak ...func(*Config, *auth.Argon2Params)) *env {
	t.Helper()
	clock := testrun.NewClock()
	cfg := Config{EdgeURL: "https://edge.example/", LoginAccountBurst: 5, LoginIPBurst: 1000}
	params := testArgon2
	for _, f := range tweak {
		f(&cfg, &params)
	}
	logs := &testrun.LockedBuffer{}
	logger, _ := obs.NewLogger(logs, "debug")
	o := obs.New("catalogd", logger)
	// Store spans follow o: none until a test starts tracing.
	st, err := store.Open(context.Background(), dsn, store.Options{Now: clock.Now, Tracer: o})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o.AddCheck("db", st.Ping)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer := playtoken.NewSigner("test-play", key, clock.Now)
	accessKey := auth.DeriveAccessKey(key)
	public, err := signer.KeySet().With("test-access", accessKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := auth.NewPasswords(params, 4)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, Deps{
		Obs: o, Store: st, Passwords: pw,
		Access:   auth.NewAccessTokens("test-access", accessKey, 15*time.Minute, clock.Now),
		Playback: signer, PublicKeys: public, Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &env{t: t, url: hs.URL, srv: srv, store: st, clock: clock, signer: signer, logs: logs}
}

// response is a finished HTTP exchange.
type response struct {
	*http.Response
	body []byte
}

// problem decodes a problem+json body.
func (r response) problem() problem {
	var p problem
	json.Unmarshal(r.body, &p)
	return p
}

func (r response) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// request is one call; body may be nil, a string (sent raw) or a value
// (sent as JSON).
type request struct {
	method, path, token string
	body                any
	header              map[string]string
}

func (e *env) do(rq request) response {
	e.t.Helper()
	var rd io.Reader
	switch b := rq.body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(rq.method, e.url+rq.path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rq.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{res, body}
}

func (e *env) get(path, token string) response {
	e.t.Helper()
	return e.do(request{method: "GET", path: path, token: token})
}

// getJSON GETs path with token, wants 200 and decodes the body into a T;
// r is the answer, for messages.
func getJSON[T any](e *env, path, token string) (v T, r response) {
	e.t.Helper()
	r = e.get(path, token)
	wantStatus(e.t, r, http.StatusOK, "")
	r.decode(e.t, &v)
	return v, r
}

// wantStatus fails the test unless r has status code; for problems it
// also checks the content type and the code when code is not "".
func wantStatus(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s = %d %s, want %d", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.body, status)
	}
	if status >= 400 {
		if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Errorf("%s %s: Content-Type %q, want application/problem+json", r.Request.Method, r.Request.URL.Path, ct)
		}
		p := r.problem()
		if p.Status != status || p.Title == "" || !strings.HasPrefix(p.Type, problemTypePrefix) || p.Code == "" {
			t.Errorf("%s %s: malformed problem %s", r.Request.Method, r.Request.URL.Path, r.body)
		}
		if code != "" && p.Code != code {
			t.Errorf("%s %s: code %q, want %q (%s)", r.Request.Method, r.Request.URL.Path, p.Code, code, r.body)
		}
	}
}

// user is a registered account with its tokens.
type user struct {
	tokenResponse
	password string
}

func (e *env) register(email, name string) user {
	e.t.Helper()
	pw := "pw-" + email
	r := e.do(request{method: "POST", path: "/auth/register", body: map[string]string{
		"email": email, "password": pw, "display_name": name}})
	wantStatus(e.t, r, http.StatusCreated, "")
	var tr tokenResponse
	r.decode(e.t, &tr)
	return user{tr, pw}
}

// fixture is a small catalog: an artist owned by owner with an album of
// two ready songs and one still processing.
type fixture struct {
	owner                user
	artist               store.Artist
	album                store.Album
	ready, other, hidden store.Song
}

func (e *env) fixture() fixture {
	e.t.Helper()
	ctx := context.Background()
	f := fixture{owner: e.register("owner@example.com", "Owner")}
	r := e.do(request{method: "POST", path: "/artists", token: f.owner.AccessToken,
		body: map[string]string{"name": "Sigur Rós", "bio": "Icelandic band"}})
	wantStatus(e.t, r, http.StatusCreated, "")
	var a artistView
	r.decode(e.t, &a)
	var err error
	if f.artist, err = e.store.ArtistByID(ctx, a.ID); err != nil {
		e.t.Fatal(err)
	}
	if f.album, err = e.store.CreateAlbum(ctx, store.NewAlbum{ArtistID: a.ID, Title: "Ágætis byrjun", Type: store.AlbumTypeAlbum, ReleaseDate: "1999-06-12"}); err != nil {
		e.t.Fatal(err)
	}
	mk := func(title string, track int, status string, version int) store.Song {
		so, err := e.store.CreateSong(ctx, store.NewSong{AlbumID: f.album.ID, Title: title, TrackNumber: track, DurationMS: 300000,
			Genre: "post-rock", Status: status, CurrentVersion: version})
		if err != nil {
			e.t.Fatal(err)
		}
		return so
	}
	f.ready = mk("Svefn-g-englar", 2, store.StatusReady, 1)
	f.other = mk("Starálfur", 3, store.StatusReady, 3)
	f.hidden = mk("Olsen Olsen (demo)", 9, store.StatusProcessing, 0)
	return f
}
