package catalogd

import (
	"bytes"
	"context"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"testing"

	"riff/catalogd/auth"
	"riff/catalogd/store"
)

// eachCreditsEnv is eachIngestEnv (SQLite, and PostgreSQL when
// RIFF_TEST_POSTGRES is set) with uploads capped at 300 KiB.
func eachCreditsEnv(t *testing.T, fn func(t *testing.T, e *ingestEnv)) {
	eachIngestEnv(t, fn, func(c *Config, _ *auth.Argon2Params) { c.UploadMaxBytes = 300 << 10 })
}

// TestCreditsNameOnlyYourArtists is issue 14's impersonation report: the
// owner of artist C uploads to C's album crediting artist 1. A primary
// credit must be the album's artist, another owner's artist cannot be
// credited at all, and an unknown one is a 400 naming the entry, told
// before the audio is spooled when the fields come first.
func TestCreditsNameOnlyYourArtists(t *testing.T) {
	eachCreditsEnv(t, func(t *testing.T, e *ingestEnv) {
		f := e.fixture()
		ctx := context.Background()
		mallory := e.register("mallory@example.com", "Mallory")
		var c, c2 artistView
		r := e.do(request{method: "POST", path: "/artists", token: mallory.AccessToken, body: map[string]string{"name": "C"}})
		wantStatus(t, r, http.StatusCreated, "")
		r.decode(t, &c)
		r = e.do(request{method: "POST", path: "/artists", token: mallory.AccessToken, body: map[string]string{"name": "C's side project"}})
		wantStatus(t, r, http.StatusCreated, "")
		r.decode(t, &c2)
		al, err := e.store.CreateAlbum(ctx, store.NewAlbum{ArtistID: c.ID, Title: "C's album", Type: store.AlbumTypeSingle})
		if err != nil {
			t.Fatal(err)
		}
		good, _ := os.ReadFile(synth(t, t.TempDir(), "good.flac", 440, 2))
		_, before, _ := e.store.ArtistSongs(ctx, f.artist.ID, 50, 0)
		album := [2]string{"album_id", itoa(al.ID)}
		one := itoa(f.artist.ID)
		for _, tc := range []struct {
			name, credits string
			data          []byte
			status        int
			code, field   string
		}{
			{"someone else as primary", `[{"artist_id":` + one + `,"role":"primary"}]`, good, 400, "primary_not_album_artist", "credits[0].artist_id"},
			{"someone else featured", `[{"artist_id":` + one + `,"role":"featured"}]`, good, 403, "credit_not_allowed", "credits[0].artist_id"},
			{"someone else second", `[{"artist_id":` + itoa(c2.ID) + `,"role":"producer"},{"artist_id":` + one + `,"role":"remixer"}]`, good, 403, "credit_not_allowed", "credits[1].artist_id"},
			{"unknown artist", `[{"artist_id":999999,"role":"featured"}]`, good, 400, "unknown_artist", "credits[0].artist_id"},
			// Fields first, then more audio than the server takes: the
			// credit is judged before the file is read.
			{"unknown artist before a huge file", `[{"artist_id":999999,"role":"featured"}]`,
				bytes.Repeat([]byte{0}, int(e.srv.cfg.UploadMaxBytes)+1), 400, "unknown_artist", "credits[0].artist_id"},
			{"bad role", `[{"artist_id":` + one + `,"role":"dj"}]`, good, 400, "invalid_enum", "credits[0].role"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.upload("POST", "/songs", mallory.AccessToken, [][2]string{album, {"credits", tc.credits}}, "good.flac", tc.data)
				wantStatus(t, r, tc.status, tc.code)
				if p := r.problem(); p.Field != tc.field {
					t.Errorf("field %q, want %q (%s)", p.Field, tc.field, r.body)
				}
			})
		}
		// Nothing landed on artist 1's page.
		if _, total, _ := e.store.ArtistSongs(ctx, f.artist.ID, 50, 0); total != before {
			t.Errorf("artist 1 has %d songs after refused credits, had %d", total, before)
		}
		// Crediting one's own other artist works; the primary is the album's.
		r = e.upload("POST", "/songs", mallory.AccessToken, [][2]string{album, {"credits", `[{"artist_id":` + itoa(c2.ID) + `,"role":"featured"}]`}}, "good.flac", good)
		wantStatus(t, r, http.StatusAccepted, "")
		var so songView
		r.decode(t, &so)
		if len(so.Artists) != 2 || so.Artists[0].ID != c.ID || so.Artists[0].Role != store.RolePrimary || so.Artists[1].ID != c2.ID {
			t.Errorf("credits = %s", r.body)
		}
	})
}

// TestArtistNamesUnique: an artist name is taken whatever its case, width
// or invisible characters (409 name_taken), and a name needs something
// visible.
func TestArtistNamesUnique(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture() // "Sigur Rós"
		mallory := e.register("mallory@example.com", "Mallory")
		for _, name := range []string{"Sigur Rós", "SIGUR RÓS", "Sigur\u200b Rós", "Sigur Ro\u0301s", "Ｓｉｇｕｒ Ｒóｓ", "Sigur  Rós\u2060", "\u00adsigur rós"} {
			r := e.do(request{method: "POST", path: "/artists", token: mallory.AccessToken, body: map[string]string{"name": name}})
			wantStatus(t, r, http.StatusConflict, "name_taken")
			if p := r.problem(); p.Field != "name" {
				t.Errorf("%q: field %q", name, p.Field)
			}
		}
		for _, name := range []string{"\u200b", "\u200b\u2060 \ufeff", "\u3164"} {
			r := e.do(request{method: "POST", path: "/artists", token: mallory.AccessToken, body: map[string]string{"name": name}})
			wantStatus(t, r, http.StatusBadRequest, "")
		}
		r := e.do(request{method: "POST", path: "/artists", token: mallory.AccessToken, body: map[string]string{"name": "Sigur Ros"}})
		wantStatus(t, r, http.StatusCreated, "") // no accent: another name
		var m artistView
		r.decode(t, &m)
		r = e.do(request{method: "PATCH", path: "/artists/" + itoa(m.ID), token: mallory.AccessToken, body: map[string]string{"name": "sigur rós"}})
		wantStatus(t, r, http.StatusConflict, "name_taken")
		// Renaming to one's own name in another case is fine.
		r = e.do(request{method: "PATCH", path: "/artists/" + itoa(f.artist.ID), token: f.owner.AccessToken, body: map[string]string{"name": "SIGUR RÓS"}})
		wantStatus(t, r, http.StatusOK, "")
	})
}

// TestUploadFilenameLineBreak: a filename with CR or LF (RFC 2231
// filename*, the one way to send them in a header) is refused saying so.
func TestUploadFilenameLineBreak(t *testing.T) {
	eachCreditsEnv(t, func(t *testing.T, e *ingestEnv) {
		f := e.fixture()
		for _, enc := range []string{"a%0D%0Ab.flac", "a%0Ab.flac", "a%0Db.flac"} {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("album_id", itoa(f.album.ID))
			h := textproto.MIMEHeader{}
			h.Set("Content-Disposition", `form-data; name="file"; filename*=UTF-8''`+enc)
			w, _ := mw.CreatePart(h)
			w.Write([]byte("fLaC"))
			mw.Close()
			r := e.do(request{method: "POST", path: "/songs", token: f.owner.AccessToken, body: buf.Bytes(),
				header: map[string]string{"Content-Type": mw.FormDataContentType()}})
			wantStatus(t, r, http.StatusBadRequest, "invalid_filename")
			if p := r.problem(); p.Field != "file" || !strings.Contains(p.Detail, "line breaks") {
				t.Errorf("%s: %s", enc, r.body)
			}
		}
	})
}
