package catalogd

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"riff/catalogd/auth"
	"riff/catalogd/store"
	"riff/catalogd/store/storetest"
	"riff/internal/blobkey"
)

// Tests of the Subsonic API (package subsonic) as catalogd serves it, over
// a real listener: the envelope in both formats, errors, the three ways
// to authenticate and every endpoint against Riff's own API.

// subsonicCred creates an API key or app password for u through the API.
func (e *env) subsonicCred(u user, kind string) subsonicCredentialView {
	e.t.Helper()
	r := e.do(request{method: "POST", path: "/users/me/subsonic/" + kind, token: u.AccessToken, body: map[string]string{"name": "test app"}})
	wantStatus(e.t, r, http.StatusCreated, "")
	var v subsonicCredentialView
	r.decode(e.t, &v)
	return v
}

// rest calls /rest/{method} with params (GET) and returns the status, the
// headers and the body.
func (e *env) rest(method string, params url.Values) (int, http.Header, []byte) {
	e.t.Helper()
	r := e.do(request{method: "GET", path: "/rest/" + method + "?" + params.Encode()})
	return r.StatusCode, r.Header, r.body
}

// envelope is the JSON envelope with a payload left raw.
type envelope struct {
	Status        string              `json:"status"`
	Version       string              `json:"version"`
	Type          string              `json:"type"`
	ServerVersion string              `json:"serverVersion"`
	OpenSubsonic  bool                `json:"openSubsonic"`
	Error         *struct{ Code int } `json:"error"`
	raw           map[string]json.RawMessage
}

// restJSON calls a method with f=json and decodes the envelope; payload,
// when not nil, receives the field named key.
func (e *env) restJSON(method string, params url.Values, key string, payload any) envelope {
	e.t.Helper()
	params.Set("f", "json")
	status, h, body := e.rest(method, params)
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
		e.t.Fatalf("%s: %d %s %s", method, status, h.Get("Content-Type"), body)
	}
	var outer struct {
		R json.RawMessage `json:"subsonic-response"`
	}
	var env envelope
	if err := json.Unmarshal(body, &outer); err != nil {
		e.t.Fatalf("%s: %v in %s", method, err, body)
	}
	json.Unmarshal(outer.R, &env)
	json.Unmarshal(outer.R, &env.raw)
	if env.Version != "1.16.1" || env.Type != "riff" || !env.OpenSubsonic || env.ServerVersion == "" {
		e.t.Errorf("%s: envelope %s", method, outer.R)
	}
	if key != "" && payload != nil {
		if err := json.Unmarshal(env.raw[key], payload); err != nil {
			e.t.Fatalf("%s: %s: %v in %s", method, key, err, outer.R)
		}
	}
	return env
}

// wantOK fails unless env is a success.
func wantOK(t *testing.T, method string, env envelope) {
	t.Helper()
	if env.Status != "ok" || env.Error != nil {
		t.Fatalf("%s: status %q error %+v, want ok", method, env.Status, env.Error)
	}
}

// wantCode fails unless env is a failure with code.
func wantCode(t *testing.T, method string, env envelope, code int) {
	t.Helper()
	if env.Status != "failed" || env.Error == nil || env.Error.Code != code {
		t.Fatalf("%s: status %q error %+v, want failed with code %d", method, env.Status, env.Error, code)
	}
}

func keyParams(key string, kv ...string) url.Values {
	v := url.Values{"apiKey": {key}, "c": {"test"}, "v": {"1.16.1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Add(kv[i], kv[i+1])
	}
	return v
}

func tokenParams(username, password, salt string) url.Values {
	sum := md5.Sum([]byte(password + salt))
	return url.Values{"u": {username}, "t": {hex.EncodeToString(sum[:])}, "s": {salt}, "c": {"test"}, "v": {"1.16.1"}}
}

func TestSubsonicEnvelope(t *testing.T) {
	e := newEnv(t)
	u := e.register("ann@example.com", "Ann")
	key := e.subsonicCred(u, "api-keys").Key
	if !strings.HasPrefix(key, "riffsk_") {
		t.Fatalf("key %q", key)
	}
	wantOK(t, "ping", e.restJSON("ping", keyParams(key), "", nil))
	wantOK(t, "ping.view", e.restJSON("ping.view", keyParams(key), "", nil))

	// XML is the default: the namespace, the envelope's attributes.
	status, h, body := e.rest("getLicense", keyParams(key))
	if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/xml") {
		t.Fatalf("XML: %d %s", status, h.Get("Content-Type"))
	}
	var x struct {
		XMLName      xml.Name
		Status       string `xml:"status,attr"`
		Version      string `xml:"version,attr"`
		Type         string `xml:"type,attr"`
		OpenSubsonic string `xml:"openSubsonic,attr"`
		License      struct {
			Valid string `xml:"valid,attr"`
		} `xml:"license"`
	}
	if err := xml.Unmarshal(body, &x); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if x.XMLName.Space != "http://subsonic.org/restapi" || x.XMLName.Local != "subsonic-response" || x.Status != "ok" ||
		x.Version != "1.16.1" || x.Type != "riff" || x.OpenSubsonic != "true" || x.License.Valid != "true" {
		t.Errorf("XML envelope %s", body)
	}
	// Genres carry their name as text in XML and as value in JSON.
	f := e.fixture()
	_ = f
	_, _, body = e.rest("getGenres", keyParams(key))
	if !strings.Contains(string(body), `<genre songCount="2" albumCount="1">post-rock</genre>`) {
		t.Errorf("XML genres: %s", body)
	}
	var gs struct{ Genre []map[string]any }
	wantOK(t, "getGenres", e.restJSON("getGenres", keyParams(key), "genres", &gs))
	if len(gs.Genre) != 1 || gs.Genre[0]["value"] != "post-rock" || gs.Genre[0]["songCount"] != 2.0 {
		t.Errorf("JSON genres: %+v", gs)
	}

	// POST form (formPost), answered the same.
	post := e.do(request{method: "POST", path: "/rest/ping.view", body: keyParams(key, "f", "json").Encode(),
		header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}})
	if !strings.Contains(string(post.body), `"status":"ok"`) {
		t.Errorf("POST ping: %s", post.body)
	}

	// getOpenSubsonicExtensions needs no login and names apiKeyAuthentication.
	var exts []struct {
		Name     string
		Versions []int
	}
	wantOK(t, "getOpenSubsonicExtensions", e.restJSON("getOpenSubsonicExtensions", url.Values{}, "openSubsonicExtensions", &exts))
	if !slices.ContainsFunc(exts, func(x struct {
		Name     string
		Versions []int
	}) bool {
		return x.Name == "apiKeyAuthentication"
	}) {
		t.Errorf("extensions %+v", exts)
	}
}

func TestSubsonicErrors(t *testing.T) {
	e := newEnv(t)
	u := e.register("ann@example.com", "Ann")
	key := e.subsonicCred(u, "api-keys").Key
	for _, tc := range []struct {
		method string
		params url.Values
		code   int
	}{
		{"ping", url.Values{}, 10},
		{"ping", keyParams("riffsk_nope"), 44},
		{"ping", keyParams(key, "u", "ann@example.com"), 43},
		{"ping", url.Values{"u": {"ann@example.com"}, "p": {"x"}}, 42},
		{"ping", url.Values{"u": {"ann@example.com"}, "t": {"x"}}, 10},
		{"getAlbum", keyParams(key), 10},
		{"getAlbum", keyParams(key, "id", "999"), 70},
		{"getAlbum", keyParams(key, "id", "x"), 70},
		{"getSong", keyParams(key, "id", "999"), 70},
		{"getAlbumList2", keyParams(key), 10},
		{"getAlbumList2", keyParams(key, "type", "nope"), 0},
		{"getAlbumList2", keyParams(key, "type", "newest", "size", "501"), 0},
		{"download", keyParams(key, "id", "1"), 50},
		{"getCoverArt", keyParams(key, "id", "al-999"), 70},
		{"star", keyParams(key, "albumId", "1"), 0},
	} {
		wantCode(t, tc.method+" "+tc.params.Encode(), e.restJSON(tc.method, tc.params, "", nil), tc.code)
	}
	// An unknown method: 404 with the envelope.
	status, _, body := e.rest("getNothing", keyParams(key))
	if status != 404 || !strings.Contains(string(body), `code="70"`) {
		t.Errorf("unknown method: %d %s", status, body)
	}
}

func TestSubsonicAuth(t *testing.T) {
	e := newEnv(t)
	u := e.register("ann@example.com", "Ann")
	ap := e.subsonicCred(u, "app-passwords")
	if ap.Username != "ann@example.com" || len(ap.Password) < 20 {
		t.Fatalf("app password %+v", ap)
	}
	// The token scheme with the app password; the account password does
	// not work here.
	wantOK(t, "token", e.restJSON("ping", tokenParams("ann@example.com", ap.Password, "c19b2d"), "", nil))
	wantOK(t, "token, email in other case", e.restJSON("ping", tokenParams("ANN@example.com", ap.Password, "a1b2c3"), "", nil))
	wantCode(t, "account password", e.restJSON("ping", tokenParams("ann@example.com", u.password, "c19b2d"), "", nil), 40)
	wantCode(t, "unknown user", e.restJSON("ping", tokenParams("bob@example.com", ap.Password, "c19b2d"), "", nil), 40)

	// The secrets are shown once: lists hold neither keys nor passwords.
	r := e.get("/users/me/subsonic/app-passwords", u.AccessToken)
	wantStatus(t, r, 200, "")
	if strings.Contains(string(r.body), ap.Password) || !strings.Contains(string(r.body), `"test app"`) {
		t.Errorf("list: %s", r.body)
	}
	// Stored sealed, not in the clear.
	cs, err := e.store.SubsonicCredentials(context.Background(), u.User.ID, false)
	if err != nil || len(cs) != 1 || strings.Contains(string(cs[0].Secret), ap.Password) {
		t.Fatalf("stored %v %v", cs, err)
	}

	// Revoking: the key stops working; another user cannot revoke it.
	k := e.subsonicCred(u, "api-keys")
	bob := e.register("bob@example.com", "Bob")
	wantStatus(t, e.do(request{method: "DELETE", path: fmt.Sprintf("/users/me/subsonic/api-keys/%d", k.ID), token: bob.AccessToken}), 404, "")
	wantOK(t, "key", e.restJSON("ping", keyParams(k.Key), "", nil))
	wantStatus(t, e.do(request{method: "DELETE", path: fmt.Sprintf("/users/me/subsonic/api-keys/%d", k.ID), token: u.AccessToken}), 204, "")
	wantCode(t, "revoked key", e.restJSON("ping", keyParams(k.Key), "", nil), 44)

	// Failed attempts spend the account's login limit (5 in tests); once
	// spent, even the right password is refused until it recovers.
	for range 5 {
		e.rest("ping", tokenParams("ann@example.com", "wrong", "abcdef"))
	}
	status, h, _ := e.rest("ping", tokenParams("ann@example.com", ap.Password, "abcdef"))
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("after spending the limit: %d, Retry-After %q", status, h.Get("Retry-After"))
	}
}

func TestSubsonicPlainPassword(t *testing.T) {
	e := newEnv(t, func(c *Config, _ *auth.Argon2Params) {
		c.SubsonicAllowPlain, c.ClientIPHeader = true, "X-Forwarded-For"
	})
	u := e.register("ann@example.com", "Ann")
	ap := e.subsonicCred(u, "app-passwords")
	plain := url.Values{"u": {"ann@example.com"}, "p": {"enc:" + hex.EncodeToString([]byte(ap.Password))}, "f": {"json"}}
	// Over plain HTTP: refused (42), allowed or not.
	wantCode(t, "plain over http", e.restJSON("ping", plain, "", nil), 42)
	// Behind a trusted load balancer that terminated TLS: accepted.
	res := e.do(request{method: "GET", path: "/rest/ping?" + plain.Encode(), header: map[string]string{"X-Forwarded-Proto": "https"}})
	if !strings.Contains(string(res.body), `"status":"ok"`) {
		t.Errorf("plain over TLS: %s", res.body)
	}
}

func TestSubsonicCatalogSQLite(t *testing.T) { testSubsonicCatalog(t, newEnv(t)) }

func TestSubsonicCatalogPostgres(t *testing.T) {
	testSubsonicCatalog(t, newEnvDB(t, storetest.PostgresDSN(t)))
}

// testSubsonicCatalog drives every catalog endpoint and checks each
// against Riff's own API.
func testSubsonicCatalog(t *testing.T, e *env) {
	ctx := context.Background()
	f := e.fixture()
	u := e.register("ann@example.com", "Ann")
	key := e.subsonicCred(u, "api-keys").Key
	kp := func(kv ...string) url.Values { return keyParams(key, kv...) }
	sidOf := func(id int64) string { return fmt.Sprint(id) }

	t.Run("browse", func(t *testing.T) {
		var arts struct {
			Index []struct {
				Name   string
				Artist []struct {
					ID         string
					Name       string
					AlbumCount int
				}
			}
		}
		wantOK(t, "getArtists", e.restJSON("getArtists", kp(), "artists", &arts))
		if len(arts.Index) != 1 || arts.Index[0].Name != "S" || arts.Index[0].Artist[0].ID != sidOf(f.artist.ID) || arts.Index[0].Artist[0].AlbumCount != 1 {
			t.Errorf("getArtists %+v", arts)
		}
		var idx struct{ Index []struct{ Name string } }
		wantOK(t, "getIndexes", e.restJSON("getIndexes", kp(), "indexes", &idx))
		if len(idx.Index) != 1 {
			t.Errorf("getIndexes %+v", idx)
		}
		var art struct {
			Name  string
			Album []struct{ ID string }
		}
		wantOK(t, "getArtist", e.restJSON("getArtist", kp("id", sidOf(f.artist.ID)), "artist", &art))
		if art.Name != "Sigur Rós" || len(art.Album) != 1 || art.Album[0].ID != sidOf(f.album.ID) {
			t.Errorf("getArtist %+v", art)
		}
		var al struct {
			Name      string
			SongCount int
			Duration  int
			Year      int
			Song      []struct {
				ID, Title, AlbumID string
				IsDir              bool
				Duration           int
			}
		}
		wantOK(t, "getAlbum", e.restJSON("getAlbum", kp("id", sidOf(f.album.ID)), "album", &al))
		if al.Name != "Ágætis byrjun" || al.SongCount != 2 || al.Duration != 600 || al.Year != 1999 || len(al.Song) != 2 ||
			al.Song[0].ID != sidOf(f.ready.ID) || al.Song[0].Duration != 300 {
			t.Errorf("getAlbum %+v", al) // the processing song is not listed
		}
		var so struct{ Title string }
		wantOK(t, "getSong", e.restJSON("getSong", kp("id", sidOf(f.ready.ID)), "song", &so))
		wantCode(t, "getSong hidden", e.restJSON("getSong", kp("id", sidOf(f.hidden.ID)), "", nil), 70)
		for _, typ := range []string{"newest", "frequent", "highest", "random", "alphabeticalByName", "alphabeticalByArtist"} {
			var list struct{ Album []struct{ ID string } }
			wantOK(t, typ, e.restJSON("getAlbumList2", kp("type", typ), "albumList2", &list))
			if len(list.Album) != 1 {
				t.Errorf("getAlbumList2 %s: %+v", typ, list)
			}
		}
		var list struct{ Album []struct{ ID string } }
		wantOK(t, "byGenre", e.restJSON("getAlbumList2", kp("type", "byGenre", "genre", "post-rock"), "albumList2", &list))
		wantOK(t, "byYear", e.restJSON("getAlbumList2", kp("type", "byYear", "fromYear", "1990", "toYear", "2000"), "albumList2", &list))
		if len(list.Album) != 1 {
			t.Errorf("byYear: %+v", list)
		}
		wantOK(t, "byYear", e.restJSON("getAlbumList2", kp("type", "byYear", "fromYear", "2000", "toYear", "2010"), "albumList2", &list))
		if len(list.Album) != 0 {
			t.Errorf("byYear 2000s: %+v", list)
		}
		var songs struct{ Song []struct{ ID string } }
		wantOK(t, "getRandomSongs", e.restJSON("getRandomSongs", kp("size", "5"), "randomSongs", &songs))
		if len(songs.Song) != 2 {
			t.Errorf("getRandomSongs %+v", songs)
		}
		wantOK(t, "getSongsByGenre", e.restJSON("getSongsByGenre", kp("genre", "post-rock", "count", "1"), "songsByGenre", &songs))
		if len(songs.Song) != 1 {
			t.Errorf("getSongsByGenre %+v", songs)
		}
		wantOK(t, "getTopSongs", e.restJSON("getTopSongs", kp("artist", "sigur ros"), "topSongs", &songs))
		if len(songs.Song) != 2 {
			t.Errorf("getTopSongs %+v", songs)
		}
		var found struct {
			Artist []struct{ ID string }
			Album  []struct {
				ID        string
				SongCount int
			}
			Song []struct{ ID string }
		}
		wantOK(t, "search3", e.restJSON("search3", kp("query", "sigur"), "searchResult3", &found))
		if len(found.Artist) != 1 || len(found.Album) != 1 || found.Album[0].SongCount != 2 || len(found.Song) != 2 {
			t.Errorf("search3 %+v", found)
		}
		wantOK(t, "search3", e.restJSON("search3", kp("query", "englar", "artistCount", "0", "albumCount", "0"), "searchResult3", &found))
		if len(found.Song) != 1 || found.Song[0].ID != sidOf(f.ready.ID) {
			t.Errorf("search3 songs %+v", found)
		}
		wantOK(t, "search3 empty", e.restJSON("search3", kp("query", ""), "searchResult3", &found))
		if len(found.Artist) != 1 || len(found.Album) != 1 || len(found.Song) != 2 {
			t.Errorf("search3 all %+v", found)
		}
		var mf struct{ MusicFolder []struct{ ID int } }
		wantOK(t, "getMusicFolders", e.restJSON("getMusicFolders", kp(), "musicFolders", &mf))
	})

	t.Run("playlists", func(t *testing.T) {
		var pl struct {
			ID        string
			Name      string
			SongCount int
			Entry     []struct{ ID string }
		}
		p := kp("name", "Road trip", "songId", sidOf(f.ready.ID), "songId", sidOf(f.other.ID), "songId", sidOf(f.ready.ID))
		wantOK(t, "createPlaylist", e.restJSON("createPlaylist", p, "playlist", &pl))
		if pl.Name != "Road trip" || pl.SongCount != 3 || len(pl.Entry) != 3 {
			t.Fatalf("createPlaylist %+v", pl)
		}
		// The same playlist in Riff's API.
		r := e.get("/playlist/"+pl.ID+"?include_songs=true", u.AccessToken)
		wantStatus(t, r, 200, "")
		var v playlistDetailView
		r.decode(t, &v)
		if v.Name != "Road trip" || v.ItemCount != 3 || v.IsPublic {
			t.Errorf("Riff's view %+v", v)
		}
		wantOK(t, "updatePlaylist", e.restJSON("updatePlaylist", kp("playlistId", pl.ID, "name", "Night drive", "comment", "slow",
			"public", "true", "songIndexToRemove", "0", "songIndexToRemove", "2", "songIdToAdd", sidOf(f.ready.ID)), "", nil))
		r = e.get("/playlist/"+pl.ID+"?include_songs=true", u.AccessToken)
		r.decode(t, &v)
		ids := []int64{}
		for _, it := range v.Songs.Items {
			ids = append(ids, it.Song.ID)
		}
		if v.Name != "Night drive" || v.Description != "slow" || !v.IsPublic || !slices.Equal(ids, []int64{f.other.ID, f.ready.ID}) {
			t.Errorf("after updatePlaylist: %+v %v", v, ids)
		}
		var pls struct{ Playlist []struct{ ID, Name string } }
		wantOK(t, "getPlaylists", e.restJSON("getPlaylists", kp(), "playlists", &pls))
		if len(pls.Playlist) != 1 || pls.Playlist[0].Name != "Night drive" {
			t.Errorf("getPlaylists %+v", pls)
		}
		wantOK(t, "getPlaylist", e.restJSON("getPlaylist", kp("id", pl.ID), "playlist", &pl))
		// Someone else may see it (public) but not change it.
		bobKey := e.subsonicCred(e.register("bob@example.com", "Bob"), "api-keys").Key
		wantOK(t, "getPlaylist bob", e.restJSON("getPlaylist", keyParams(bobKey, "id", pl.ID), "", nil))
		wantCode(t, "deletePlaylist bob", e.restJSON("deletePlaylist", keyParams(bobKey, "id", pl.ID), "", nil), 50)
		wantOK(t, "deletePlaylist", e.restJSON("deletePlaylist", kp("id", pl.ID), "", nil))
		wantStatus(t, e.get("/playlist/"+pl.ID, u.AccessToken), 404, "")
	})

	t.Run("stars", func(t *testing.T) {
		wantOK(t, "star", e.restJSON("star", kp("id", sidOf(f.ready.ID), "artistId", sidOf(f.artist.ID)), "", nil))
		wantCode(t, "star hidden", e.restJSON("star", kp("id", sidOf(f.hidden.ID)), "", nil), 70)
		r := e.get("/users/me/liked-songs", u.AccessToken)
		if !strings.Contains(string(r.body), `"title":"Svefn-g-englar"`) {
			t.Errorf("liked songs: %s", r.body)
		}
		r = e.get("/users/me/following", u.AccessToken)
		if !strings.Contains(string(r.body), `"name":"Sigur Rós"`) {
			t.Errorf("following: %s", r.body)
		}
		var st struct {
			Artist []struct{ ID, Starred string }
			Song   []struct{ ID, Starred string }
		}
		wantOK(t, "getStarred2", e.restJSON("getStarred2", kp(), "starred2", &st))
		if len(st.Song) != 1 || st.Song[0].Starred == "" || len(st.Artist) != 1 {
			t.Errorf("getStarred2 %+v", st)
		}
		wantOK(t, "unstar", e.restJSON("unstar", kp("id", sidOf(f.ready.ID), "artistId", sidOf(f.artist.ID)), "", nil))
		wantOK(t, "getStarred2", e.restJSON("getStarred2", kp(), "starred2", &st))
		if len(st.Song) != 0 || len(st.Artist) != 0 {
			t.Errorf("after unstar %+v", st)
		}
	})

	t.Run("scrobble", func(t *testing.T) {
		wantOK(t, "now playing", e.restJSON("scrobble", kp("id", sidOf(f.ready.ID), "submission", "false"), "", nil))
		wantOK(t, "scrobble", e.restJSON("scrobble", kp("id", sidOf(f.ready.ID)), "", nil))
		wantOK(t, "scrobble again", e.restJSON("scrobble", kp("id", sidOf(f.ready.ID)), "", nil)) // same event id: counted once
		r := e.get("/users/me/recently-played", u.AccessToken)
		var page struct {
			Items []recentPlayView
			Total int
		}
		r.decode(t, &page)
		if page.Total != 1 || page.Items[0].Song.ID != f.ready.ID {
			t.Errorf("recently played: %s", r.body)
		}
		// A play that had no time to happen is refused.
		future := fmt.Sprint(e.clock.Now().Add(3600e9).UnixMilli())
		wantCode(t, "scrobble future", e.restJSON("scrobble", kp("id", sidOf(f.other.ID), "time", future), "", nil), 0)
		var list struct{ Album []struct{ ID string } }
		wantOK(t, "recent", e.restJSON("getAlbumList2", kp("type", "recent"), "albumList2", &list))
		if len(list.Album) != 1 {
			t.Errorf("recent albums %+v", list)
		}
	})

	t.Run("media", func(t *testing.T) {
		for _, tc := range []struct {
			method string
			params url.Values
			want   string
		}{
			{"stream", kp("id", sidOf(f.ready.ID)), "/v1/ogg_128.ogg"}, // free tier
			{"stream", kp("id", sidOf(f.ready.ID), "maxBitRate", "96"), "/v1/ogg_64.ogg"},
			{"stream", kp("id", sidOf(f.ready.ID), "maxBitRate", "320"), "/v1/ogg_128.ogg"},
			{"stream", kp("id", sidOf(f.ready.ID), "format", "aac"), "/v1/aac_128.mp4"},
			{"hls.m3u8", kp("id", sidOf(f.ready.ID)), "/v1/master.m3u8"},
		} {
			status, h, body := e.rest(tc.method, tc.params)
			loc := h.Get("Location")
			if status != http.StatusFound || !strings.HasPrefix(loc, "https://edge.example/t/") || !strings.HasSuffix(loc, tc.want) {
				t.Errorf("%s %s: %d %q %s, want a redirect to …%s", tc.method, tc.params.Encode(), status, loc, body, tc.want)
			}
		}
		wantCode(t, "stream hidden", e.restJSON("stream", kp("id", sidOf(f.hidden.ID)), "", nil), 70)
		wantCode(t, "no cover", e.restJSON("getCoverArt", kp("id", "al-"+sidOf(f.album.ID)), "", nil), 70)
		cover := "https://edge.example/covers/1/abc-300.jpg"
		if _, err := e.store.UpdateAlbum(ctx, f.album.ID, store.AlbumUpdate{CoverURL: &cover}); err != nil {
			t.Fatal(err)
		}
		status, h, _ := e.rest("getCoverArt", kp("id", "al-"+sidOf(f.album.ID)))
		if status != http.StatusFound || h.Get("Location") != cover {
			t.Errorf("getCoverArt: %d %q", status, h.Get("Location"))
		}
		var al struct{ CoverArt string }
		wantOK(t, "getAlbum", e.restJSON("getAlbum", kp("id", sidOf(f.album.ID)), "album", &al))
		if al.CoverArt != "al-"+sidOf(f.album.ID) {
			t.Errorf("coverArt %q", al.CoverArt)
		}
		// A cover of its own (PUT /albums/{id}/cover) wins over the link:
		// the edge's image of the smallest size at least `size`.
		const hash = "0123456789abcdef0123456789abcdef"
		if _, err := e.store.SetAlbumCover(ctx, f.album.ID, hash, false); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ size, want int }{{0, 300}, {64, 64}, {65, 300}, {500, 640}, {4000, 640}} {
			p := kp("id", "al-"+sidOf(f.album.ID))
			if tc.size > 0 {
				p.Set("size", strconv.Itoa(tc.size))
			}
			status, h, _ := e.rest("getCoverArt", p)
			want := "https://edge.example" + blobkey.CoverPath(f.album.ArtistID, f.album.ID, hash, tc.want)
			if status != http.StatusFound || h.Get("Location") != want {
				t.Errorf("getCoverArt size=%d: %d %q, want %q", tc.size, status, h.Get("Location"), want)
			}
		}
	})
}
