package catalogd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/blobkey"
	"riff/internal/playtoken"
)

func TestProfiles(t *testing.T) {
	e := newEnv(t)
	ann := e.register("ann@example.com", "Ann")
	bob := e.register("bob@example.com", "Bob")

	r := e.do(request{method: "PATCH", path: "/users/me", token: ann.AccessToken, body: map[string]any{
		"display_name": "  Ann Ö  ", "avatar_url": "https://img.example/a.png", "country": "SE",
		"preferences": map[string]any{"autoplay": false, "quality": "high"}}})
	wantStatus(t, r, http.StatusOK, "")
	var me userView
	r.decode(t, &me)
	if me.DisplayName != "Ann Ö" || me.AvatarURL != "https://img.example/a.png" || me.Country != "SE" ||
		string(me.Preferences) != `{"autoplay":false,"quality":"high"}` {
		t.Errorf("patched profile = %+v (prefs %s)", me, me.Preferences)
	}
	// null clears the avatar; absent fields stay.
	r = e.do(request{method: "PATCH", path: "/users/me", token: ann.AccessToken, body: `{"avatar_url":null}`})
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &me)
	if me.AvatarURL != "" || me.Country != "SE" || me.DisplayName != "Ann Ö" {
		t.Errorf("after clearing avatar: %+v", me)
	}
	for _, tc := range []struct{ body, field, code string }{
		{`{"display_name":null}`, "display_name", "required"},
		{`{"display_name":""}`, "display_name", "required"},
		{`{"display_name":"` + strings.Repeat("x", 101) + `"}`, "display_name", "too_long"},
		{`{"avatar_url":"javascript:alert(1)"}`, "avatar_url", "invalid_url"},
		{`{"avatar_url":"/relative.png"}`, "avatar_url", "invalid_url"},
		{`{"country":"Sweden"}`, "country", "invalid_country"},
		{`{"preferences":[1,2]}`, "preferences", "invalid_type"},
		{`{"preferences":"x"}`, "preferences", "invalid_type"},
		{`{"preferences":{"big":"` + strings.Repeat("x", 9000) + `"}}`, "preferences", "too_long"},
		{`{"email":"evil@example.com"}`, "email", "unknown_field"},
		{`{"tier":"premium"}`, "tier", "unknown_field"},
		{`{"display_name":42}`, "display_name", "invalid_type"},
	} {
		r := e.do(request{method: "PATCH", path: "/users/me", token: ann.AccessToken, body: tc.body})
		wantStatus(t, r, http.StatusBadRequest, tc.code)
		if p := r.problem(); p.Field != tc.field {
			t.Errorf("PATCH %s: field %q, want %q", tc.body, p.Field, tc.field)
		}
	}
	wantStatus(t, e.do(request{method: "PATCH", path: "/users/me", body: `{"display_name":"x"}`}), http.StatusUnauthorized, "unauthenticated")

	// Public profile: public fields only, whoever asks.
	for _, token := range []string{"", bob.AccessToken, ann.AccessToken} {
		r = e.get("/users/"+itoa(ann.User.ID), token)
		wantStatus(t, r, http.StatusOK, "")
		var m map[string]any
		r.decode(t, &m)
		keys := []string{}
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if want := []string{"avatar_url", "created_at", "display_name", "id"}; !slices.Equal(keys, want) {
			t.Errorf("public profile keys = %v, want %v", keys, want)
		}
		if strings.Contains(string(r.body), "ann@example.com") || strings.Contains(string(r.body), "argon2") || strings.Contains(string(r.body), "quality") {
			t.Errorf("public profile leaks private data: %s", r.body)
		}
	}
	wantStatus(t, e.get("/users/999999", ""), http.StatusNotFound, "not_found")
	wantStatus(t, e.get("/users/abc", ""), http.StatusBadRequest, "invalid_id")
	wantStatus(t, e.get("/users/-1", ""), http.StatusBadRequest, "invalid_id")
	wantStatus(t, e.get("/users/0", ""), http.StatusBadRequest, "invalid_id")
	wantStatus(t, e.get("/users/99999999999999999999", ""), http.StatusBadRequest, "invalid_id")
	// Bob's token only ever changes Bob.
	r = e.do(request{method: "PATCH", path: "/users/me", token: bob.AccessToken, body: `{"display_name":"Bob 2"}`})
	wantStatus(t, r, http.StatusOK, "")
	var annNow publicUserView
	e.get("/users/"+itoa(ann.User.ID), "").decode(t, &annNow)
	if annNow.DisplayName != "Ann Ö" {
		t.Errorf("Ann's name changed to %q by Bob's PATCH", annNow.DisplayName)
	}
}

func TestArtistsAndAlbums(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	mallory := e.register("mallory@example.com", "Mallory")

	// Creating an artist made the owner an artist.
	var me userView
	e.get("/users/me", f.owner.AccessToken).decode(t, &me)
	if me.Role != "artist" {
		t.Errorf("owner role = %q, want artist", me.Role)
	}
	r := e.get("/artists/"+itoa(f.artist.ID), "")
	wantStatus(t, r, http.StatusOK, "")
	var a artistView
	r.decode(t, &a)
	if a.Name != "Sigur Rós" || a.Bio != "Icelandic band" || strings.Contains(string(r.body), "owner") {
		t.Errorf("artist = %s", r.body)
	}
	wantStatus(t, e.get("/artists/424242", ""), http.StatusNotFound, "not_found")

	// Only the owner may change the artist.
	path := "/artists/" + itoa(f.artist.ID)
	r = e.do(request{method: "PATCH", path: path, token: mallory.AccessToken, body: `{"name":"Hacked"}`})
	wantStatus(t, r, http.StatusForbidden, "not_owner")
	wantStatus(t, e.do(request{method: "PATCH", path: path, body: `{"name":"Hacked"}`}), http.StatusUnauthorized, "unauthenticated")
	wantStatus(t, e.do(request{method: "PATCH", path: "/artists/424242", token: f.owner.AccessToken, body: `{"name":"x"}`}), http.StatusNotFound, "not_found")
	r = e.do(request{method: "PATCH", path: path, token: f.owner.AccessToken, body: `{"bio":"From Reykjavík","image_url":"https://img.example/s.jpg"}`})
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &a)
	if a.Name != "Sigur Rós" || a.Bio != "From Reykjavík" || a.ImageURL != "https://img.example/s.jpg" {
		t.Errorf("patched artist = %+v", a)
	}

	// Albums: only for artists you own.
	albumBody := map[string]any{"artist_id": f.artist.ID, "title": "( )", "type": "album", "release_date": "2002-10-28"}
	wantStatus(t, e.do(request{method: "POST", path: "/albums", token: mallory.AccessToken, body: albumBody}), http.StatusForbidden, "not_owner")
	r = e.do(request{method: "POST", path: "/albums", token: f.owner.AccessToken, body: map[string]any{"artist_id": 424242, "title": "x"}})
	wantStatus(t, r, http.StatusNotFound, "artist_not_found")
	if r.problem().Field != "artist_id" {
		t.Errorf("unknown artist: field %q", r.problem().Field)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"artist_id": f.artist.ID, "title": "x", "type": "mixtape"}, "type"},
		{map[string]any{"artist_id": f.artist.ID, "title": "x", "release_date": "2023-02-30"}, "release_date"},
		{map[string]any{"artist_id": f.artist.ID, "title": "x", "release_date": "yesterday"}, "release_date"},
		{map[string]any{"artist_id": f.artist.ID, "title": ""}, "title"},
		{map[string]any{"title": "x"}, "artist_id"},
		{map[string]any{"artist_id": "1", "title": "x"}, "artist_id"},
	} {
		r := e.do(request{method: "POST", path: "/albums", token: f.owner.AccessToken, body: tc.body})
		wantStatus(t, r, http.StatusBadRequest, "")
		if r.problem().Field != tc.field {
			t.Errorf("POST /albums %v: field %q, want %q", tc.body, r.problem().Field, tc.field)
		}
	}
	r = e.do(request{method: "POST", path: "/albums", token: f.owner.AccessToken, body: albumBody})
	wantStatus(t, r, http.StatusCreated, "")
	var al albumView
	r.decode(t, &al)
	if al.Title != "( )" || al.Artist.ID != f.artist.ID || al.Artist.Name != "Sigur Rós" || r.Header.Get("Location") != "/albums/"+itoa(al.ID) {
		t.Errorf("created album = %s (Location %q)", r.body, r.Header.Get("Location"))
	}

	// GET /albums/{id}: ready songs in track order; the owner sees all.
	r = e.get("/albums/"+itoa(f.album.ID), "")
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &al)
	if al.Songs == nil || len(*al.Songs) != 2 || (*al.Songs)[0].ID != f.ready.ID || (*al.Songs)[1].ID != f.other.ID {
		t.Errorf("album songs (public) = %s", r.body)
	}
	e.get("/albums/"+itoa(f.album.ID), f.owner.AccessToken).decode(t, &al)
	if len(*al.Songs) != 3 || (*al.Songs)[2].Status != "processing" {
		t.Errorf("album songs (owner) = %+v", *al.Songs)
	}
	e.get("/albums/"+itoa(f.album.ID), mallory.AccessToken).decode(t, &al)
	if len(*al.Songs) != 2 {
		t.Errorf("album songs (stranger) = %d", len(*al.Songs))
	}
	// PATCH /albums/{id}.
	apath := "/albums/" + itoa(f.album.ID)
	wantStatus(t, e.do(request{method: "PATCH", path: apath, token: mallory.AccessToken, body: `{"title":"x"}`}), http.StatusForbidden, "not_owner")
	r = e.do(request{method: "PATCH", path: apath, token: f.owner.AccessToken, body: `{"title":"Ágætis byrjun (Deluxe)","cover_url":null,"type":"ep"}`})
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &al)
	if al.Title != "Ágætis byrjun (Deluxe)" || al.Type != "ep" || al.ReleaseDate != "1999-06-12" {
		t.Errorf("patched album = %+v", al)
	}
	wantStatus(t, e.do(request{method: "PATCH", path: "/albums/424242", token: f.owner.AccessToken, body: `{"title":"x"}`}), http.StatusNotFound, "")
}

func TestArtistSongs(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	ctx := context.Background()
	// Make "other" the more popular one.
	e.store.RecordPlays(ctx, []store.PlayCount{{SongID: f.other.ID, Hour: e.clock.Now(), Plays: 10}})
	for _, path := range []string{"/artist/", "/artists/"} {
		r := e.get(path+itoa(f.artist.ID)+"/songs", "")
		wantStatus(t, r, http.StatusOK, "")
		var p page[songView]
		r.decode(t, &p)
		if p.Total != 2 || p.Limit != 50 || p.Offset != 0 || p.Next != nil || len(p.Items) != 2 || p.Items[0].ID != f.other.ID {
			t.Errorf("GET %s = %s", path, r.body)
		}
		if p.Items[0].Artists[0].Name != "Sigur Rós" || p.Items[0].Album.Title != "Ágætis byrjun" {
			t.Errorf("song view = %+v", p.Items[0])
		}
		r = e.get(path+itoa(f.artist.ID)+"/songs?limit=1", "")
		r.decode(t, &p)
		if len(p.Items) != 1 || p.Next == nil || *p.Next != path+itoa(f.artist.ID)+"/songs?limit=1&offset=1" {
			t.Errorf("page 1 of 2 = %s", r.body)
		}
		r = e.get(*p.Next, "")
		r.decode(t, &p)
		if len(p.Items) != 1 || p.Items[0].ID != f.ready.ID || p.Next != nil || p.Offset != 1 {
			t.Errorf("page 2 of 2 = %s", r.body)
		}
	}
	wantStatus(t, e.get("/artist/424242/songs", ""), http.StatusNotFound, "not_found")
	for _, q := range []string{"limit=0", "limit=51", "limit=-1", "limit=abc", "limit=1e3", "limit=+5", "limit=", "offset=-1",
		"offset=10001", "offset=99999999999999999999", "offset=1.5", "limit=5&limit=6", "sort=name"} {
		r := e.get("/artist/"+itoa(f.artist.ID)+"/songs?"+q, "")
		wantStatus(t, r, http.StatusBadRequest, "")
		if r.problem().Field == "" {
			t.Errorf("?%s: no field named: %s", q, r.body)
		}
	}
}

// verifyPlayback checks a signed edge URL and returns its token's claims
// and the blob key it points at.
func verifyPlayback(t *testing.T, e *env, u string) (playtoken.Claims, string) {
	t.Helper()
	rest, ok := strings.CutPrefix(u, "https://edge.example/t/")
	if !ok {
		t.Fatalf("playback URL %q not on the edge", u)
	}
	token, key, _ := strings.Cut(rest, "/")
	v := playtoken.NewVerifier(e.signer.KeySet(), playtoken.VerifierOptions{Now: e.clock.Now})
	c, err := v.Verify([]byte(token), playtoken.TypePlay)
	if err != nil {
		t.Fatalf("playback token of %q: %v", u, err)
	}
	if !c.Allows(key) {
		t.Errorf("token for prefix %q does not open %q", c.Prefix, key)
	}
	return c, key
}

func TestSongPlayback(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	listener := e.register("listener@example.com", "Listener")
	prefix := blobkey.VersionFolder(f.artist.ID, f.album.ID, f.ready.ID, 1)

	// Anonymous: metadata only.
	r := e.get("/songs/"+itoa(f.ready.ID), "")
	wantStatus(t, r, http.StatusOK, "")
	var so songView
	r.decode(t, &so)
	if so.Title != "Svefn-g-englar" || so.HLSURL != "" || so.ExpiresAt != nil || strings.Contains(string(r.body), "_url\":\"https") {
		t.Errorf("anonymous song = %s", r.body)
	}
	if so.Status != "ready" || so.DurationMS != 300000 || so.Genre != "post-rock" || len(so.Artists) != 1 || so.Album.ID != f.album.ID {
		t.Errorf("song metadata = %+v", so)
	}

	// Free listener: URLs capped at 128 kbps.
	r = e.get("/songs/"+itoa(f.ready.ID), listener.AccessToken)
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &so)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control with signed URLs = %q", r.Header.Get("Cache-Control"))
	}
	for u, file := range map[string]string{so.HLSURL: "master.m3u8", so.DASHURL: "manifest.mpd", so.StreamURL: "ogg_128.ogg"} {
		c, key := verifyPlayback(t, e, u)
		if key != prefix+file || c.Prefix != prefix || c.MaxKbps != 128 || c.Subject != itoa(listener.User.ID) {
			t.Errorf("%s: key %q, claims %+v; want %q", u, key, c, prefix+file)
		}
		// The token opens nothing of another song or version.
		if c.Allows(blobkey.VersionFolder(f.artist.ID, f.album.ID, f.other.ID, 3)+"master.m3u8") || c.Allows(blobkey.VersionFolder(f.artist.ID, f.album.ID, f.ready.ID, 2)+"master.m3u8") {
			t.Errorf("token for %q opens other folders", c.Prefix)
		}
	}
	if so.ExpiresAt == nil || !so.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Errorf("expires_at = %v", so.ExpiresAt)
	}

	// Premium listener: 320.
	if err := e.store.SetTier(context.Background(), listener.User.ID, store.TierPremium); err != nil {
		t.Fatal(err)
	}
	r = e.do(request{method: "POST", path: "/auth/refresh", body: map[string]string{"refresh_token": listener.RefreshToken}})
	var premium tokenResponse
	r.decode(t, &premium)
	e.get("/songs/"+itoa(f.other.ID), premium.AccessToken).decode(t, &so)
	c, key := verifyPlayback(t, e, so.StreamURL)
	if c.MaxKbps != 320 || key != blobkey.VersionFolder(f.artist.ID, f.album.ID, f.other.ID, 3)+"ogg_320.ogg" {
		t.Errorf("premium stream: %q, %+v", key, c)
	}

	// Not ready: the owner sees it (without URLs), nobody else.
	hidden := "/songs/" + itoa(f.hidden.ID)
	wantStatus(t, e.get(hidden, ""), http.StatusNotFound, "not_found")
	wantStatus(t, e.get(hidden, listener.AccessToken), http.StatusNotFound, "not_found")
	r = e.get(hidden, f.owner.AccessToken)
	wantStatus(t, r, http.StatusOK, "")
	so = songView{}
	r.decode(t, &so)
	if so.Status != "processing" || so.HLSURL != "" {
		t.Errorf("owner's view of processing song = %s", r.body)
	}
	wantStatus(t, e.get("/songs/424242", ""), http.StatusNotFound, "not_found")
	wantStatus(t, e.get("/songs/x", ""), http.StatusBadRequest, "invalid_id")
}

func TestSongStream(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	free := e.register("free@example.com", "Free")
	path := "/songs/" + itoa(f.ready.ID) + "/stream"
	prefix := blobkey.VersionFolder(f.artist.ID, f.album.ID, f.ready.ID, 1)
	for _, tc := range []struct {
		query, file string
	}{
		{"", "ogg_128.ogg"},
		{"?quality=320", "ogg_128.ogg"}, // capped by the free tier
		{"?quality=128", "ogg_128.ogg"},
		{"?quality=64", "ogg_64.ogg"},
	} {
		r := e.get(path+tc.query, free.AccessToken)
		wantStatus(t, r, http.StatusFound, "")
		c, key := verifyPlayback(t, e, r.Header.Get("Location"))
		if key != prefix+tc.file || c.MaxKbps != 128 {
			t.Errorf("stream%s → %q (mbr %d), want %q", tc.query, key, c.MaxKbps, prefix+tc.file)
		}
	}
	for _, q := range []string{"?quality=96", "?quality=", "?quality=320&quality=64", "?bitrate=64"} {
		wantStatus(t, e.get(path+q, free.AccessToken), http.StatusBadRequest, "")
	}
	wantStatus(t, e.get(path, ""), http.StatusUnauthorized, "unauthenticated")
	wantStatus(t, e.get("/songs/"+itoa(f.hidden.ID)+"/stream", free.AccessToken), http.StatusNotFound, "not_found")
	wantStatus(t, e.get("/songs/"+itoa(f.hidden.ID)+"/stream", f.owner.AccessToken), http.StatusConflict, "not_playable")
}

func TestSearchEndpoint(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	ctx := context.Background()
	acdc, _ := e.store.CreateArtist(ctx, f.owner.User.ID, store.NewArtist{Name: "AC/DC"})
	al, _ := e.store.CreateAlbum(ctx, store.NewAlbum{ArtistID: acdc.ID, Title: "Back in Black", Type: store.AlbumTypeAlbum})
	hells, _ := e.store.CreateSong(ctx, store.NewSong{AlbumID: al.ID, Title: "Hells Bells", Status: store.StatusReady, CurrentVersion: 1, Genre: "rock"})

	r := e.get("/search?q=acdc", "")
	wantStatus(t, r, http.StatusOK, "")
	var res struct {
		Query     string              `json:"query"`
		Songs     *page[songView]     `json:"songs"`
		Artists   *page[artistView]   `json:"artists"`
		Albums    *page[albumView]    `json:"albums"`
		Playlists *page[playlistView] `json:"playlists"`
	}
	r.decode(t, &res)
	if res.Query != "acdc" || res.Artists == nil || res.Artists.Total != 1 || res.Artists.Items[0].ID != acdc.ID {
		t.Fatalf("search acdc = %s", r.body)
	}
	if res.Songs.Total != 1 || res.Songs.Items[0].ID != hells.ID || res.Albums.Total != 1 || res.Playlists == nil || res.Playlists.Total != 0 {
		t.Errorf("search acdc groups = %s", r.body)
	}
	if res.Playlists.Items == nil || res.Playlists.Next != nil {
		t.Errorf("empty group should have items [] and next null: %s", r.body)
	}

	// Diacritics and punctuation folded; types filtered.
	r = e.get("/search?q=sigur+ros&type=artist,song", "")
	wantStatus(t, r, http.StatusOK, "")
	res.Albums, res.Playlists = nil, nil
	r.decode(t, &res)
	if res.Artists.Total != 1 || res.Songs.Total != 2 || res.Albums != nil || res.Playlists != nil {
		t.Errorf("search sigur ros (artists, songs) = %s", r.body)
	}
	r = e.get("/search?q="+url.QueryEscape("svefn g")+"&type=song", "")
	r.decode(t, &res)
	if res.Songs.Total != 1 || res.Songs.Items[0].ID != f.ready.ID {
		t.Errorf("search 'svefn g' = %s", r.body)
	}
	// Paging: next asks for the one group.
	r = e.get("/search?q=sigur&type=song&limit=1", "")
	res.Songs = nil
	r.decode(t, &res)
	if res.Songs.Total != 2 || res.Songs.Next == nil {
		t.Fatalf("page 1 = %s", r.body)
	}
	next, _ := url.Parse(*res.Songs.Next)
	if next.Path != "/search" || next.Query().Get("type") != "song" || next.Query().Get("offset") != "1" || next.Query().Get("q") != "sigur" {
		t.Errorf("next = %q", *res.Songs.Next)
	}

	// Hostile queries are just text.
	for _, q := range []string{`"`, `*`, `NEAR(`, `'; DROP TABLE songs; --`, `-`, `:`, `a:b`, `title:hells`, `"hells`, `hells*`, `^hells`,
		`(hells) OR (bells)`, `NOT hells`, `%`, `_`, `\`, `💀`, `h`, `ac`, strings.Repeat("a", 200)} {
		r := e.get("/search?q="+url.QueryEscape(q), "")
		wantStatus(t, r, http.StatusOK, "")
	}
	var n int
	e.store.Ping(ctx)
	r = e.get("/artist/"+itoa(acdc.ID)+"/songs", "")
	var p page[songView]
	r.decode(t, &p)
	if n = p.Total; n != 1 {
		t.Errorf("songs table damaged? artist songs total %d", n)
	}

	for _, tc := range []struct{ query, field string }{
		{"", "q"},
		{"q=", "q"},
		{"q=%20%20", "q"},
		{"q=" + strings.Repeat("a", 201), "q"},
		{"q=%FF%FE", "q"},
		{"q=a%00b", "q"},
		{"q=x&type=song,video", "type"},
		{"q=x&type=", "type"},
		{"q=x&limit=0", "limit"},
		{"q=x&limit=51", "limit"},
		{"q=x&limit=-5", "limit"},
		{"q=x&offset=-1", "offset"},
		{"q=x&offset=1000000", "offset"},
		{"q=x&offset=990&limit=20", "offset"},
		{"q=x&page=2", "page"},
		{"q=x&q=y", "q"},
	} {
		r := e.get("/search?"+tc.query, "")
		wantStatus(t, r, http.StatusBadRequest, "")
		if r.problem().Field != tc.field {
			t.Errorf("/search?%s: field %q, want %q (%s)", tc.query, r.problem().Field, tc.field, r.body)
		}
	}
}

func TestTrendingEndpoint(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	ctx := context.Background()
	now := e.clock.Now()
	e.store.RecordPlays(ctx, []store.PlayCount{
		{SongID: f.ready.ID, Hour: now.Add(-48 * time.Hour), Plays: 40}, // weighs 10
		{SongID: f.other.ID, Hour: now, Plays: 20},
		{SongID: f.hidden.ID, Hour: now, Plays: 500},
	})
	r := e.get("/songs/trending", "")
	wantStatus(t, r, http.StatusOK, "")
	var p page[songView]
	r.decode(t, &p)
	if p.Limit != 50 || p.Total != 2 || len(p.Items) != 2 || p.Items[0].ID != f.other.ID || p.Items[1].ID != f.ready.ID || p.Next != nil {
		t.Errorf("trending = %s", r.body)
	}
	r = e.get("/songs/trending?genre=jazz&limit=100", "")
	r.decode(t, &p)
	if p.Total != 0 || p.Items == nil {
		t.Errorf("trending jazz = %s", r.body)
	}
	r = e.get("/songs/trending?genre=post-rock&limit=1", "")
	r.decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].ID != f.other.ID {
		t.Errorf("trending post-rock limit 1 = %s", r.body)
	}
	// Answers are cached for 30 s.
	e.store.RecordPlays(ctx, []store.PlayCount{{SongID: f.ready.ID, Hour: now, Plays: 1000}})
	e.get("/songs/trending", "").decode(t, &p)
	if p.Items[0].ID != f.other.ID {
		t.Error("trending not cached")
	}
	e.clock.Advance(31 * time.Second)
	e.get("/songs/trending", "").decode(t, &p)
	if p.Items[0].ID != f.ready.ID {
		t.Error("trending cache did not expire")
	}
	for _, q := range []string{"limit=0", "limit=101", "offset=5", "genre=" + strings.Repeat("g", 51), "genre=%FF"} {
		wantStatus(t, e.get("/songs/trending?"+q, ""), http.StatusBadRequest, "")
	}
}

// TestPrivateDataStaysPrivate walks the public answers about a user and
// their catalog and checks that no private field appears.
func TestPrivateDataStaysPrivate(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	e.do(request{method: "PATCH", path: "/users/me", token: f.owner.AccessToken, body: `{"preferences":{"secret_pref":"s3cr3t"}}`})
	stranger := e.register("stranger@example.com", "Stranger")
	hash, _ := e.store.UserByID(context.Background(), f.owner.User.ID)
	paths := []string{
		"/users/" + itoa(f.owner.User.ID), "/artists/" + itoa(f.artist.ID), "/artist/" + itoa(f.artist.ID) + "/songs",
		"/albums/" + itoa(f.album.ID), "/songs/" + itoa(f.ready.ID), "/search?q=sigur", "/search?q=owner", "/songs/trending",
	}
	for _, p := range paths {
		for _, tok := range []string{"", stranger.AccessToken} {
			r := e.get(p, tok)
			wantStatus(t, r, http.StatusOK, "")
			for _, secret := range []string{"owner@example.com", "secret_pref", "s3cr3t", hash.PasswordHash, "argon2", `"email"`, `"preferences"`, `"password`} {
				if strings.Contains(string(r.body), secret) {
					t.Errorf("GET %s (token %v) contains %q: %s", p, tok != "", secret, r.body)
				}
			}
		}
	}
	// Sanity: the owner does see them on /users/me.
	r := e.get("/users/me", f.owner.AccessToken)
	var me map[string]json.RawMessage
	r.decode(t, &me)
	if string(me["email"]) != `"owner@example.com"` || !strings.Contains(string(me["preferences"]), "s3cr3t") {
		t.Errorf("/users/me = %s", r.body)
	}
	if strings.Contains(string(r.body), "argon2") {
		t.Errorf("/users/me contains the password hash: %s", r.body)
	}
}

func TestPlaybackTokenReuse(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	u := e.register("reuse@example.com", "Reuse")
	get := func() songView {
		var so songView
		r := e.get("/songs/"+itoa(f.ready.ID), u.AccessToken)
		wantStatus(t, r, http.StatusOK, "")
		r.decode(t, &so)
		return so
	}
	first := get()
	e.clock.Advance(2 * time.Minute)
	again := get()
	if again.HLSURL != first.HLSURL || !again.ExpiresAt.Equal(*first.ExpiresAt) {
		t.Errorf("within 5 minutes: %s (exp %v), want the first token again (exp %v)", again.HLSURL, again.ExpiresAt, first.ExpiresAt)
	}
	// The reused token verifies and its expiry is what expires_at says.
	c, _ := verifyPlayback(t, e, again.StreamURL)
	if !c.Expires.Equal(*again.ExpiresAt) {
		t.Errorf("token exp %v, expires_at %v", c.Expires, again.ExpiresAt)
	}
	e.clock.Advance(4 * time.Minute)
	fresh := get()
	if fresh.HLSURL == first.HLSURL || !fresh.ExpiresAt.Equal(e.clock.Now().Add(time.Hour)) {
		t.Errorf("after 6 minutes: same token or expiry %v", fresh.ExpiresAt)
	}
	// Another song gets its own token.
	var other songView
	e.get("/songs/"+itoa(f.other.ID), u.AccessToken).decode(t, &other)
	c2, _ := verifyPlayback(t, e, other.HLSURL)
	if c2.Prefix == c.Prefix {
		t.Error("two songs share a token prefix")
	}
}

// TestClientClosedIsNotAnError checks that a request its client cancelled
// is recorded as 499 at debug level, not as a 503 error, while a timeout
// inside the server still is one.
func TestClientClosedIsNotAnError(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, "GET", "/users/me/recently-played", nil)
	rec := httptest.NewRecorder()
	e.srv.writeError(rec, req, fmt.Errorf("query: %w", context.Canceled))
	if rec.Code != statusClientClosed || rec.Body.Len() != 0 {
		t.Errorf("cancelled by the client: %d %q, want 499 and no body", rec.Code, rec.Body)
	}
	if strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Errorf("a client's cancellation was logged as an error:\n%s", e.logs)
	}

	req = httptest.NewRequest("GET", "/users/me/recently-played", nil)
	rec = httptest.NewRecorder()
	e.srv.writeError(rec, req, fmt.Errorf("query: %w", context.DeadlineExceeded))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"code":"unavailable"`) {
		t.Errorf("server-side timeout: %d %q, want 503 unavailable", rec.Code, rec.Body)
	}
}
