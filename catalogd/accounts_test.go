package catalogd

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestHiddenSongsLeaveLists: a song taken down (GET /songs/{id} is 404)
// keeps its place in other users' playlists, liked songs and recently
// played, but shows only its id and status "unavailable": no title,
// album or artists.
func TestHiddenSongsLeaveLists(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ctx := context.Background()
		ann := e.register("ann@example.com", "Ann")
		r := e.do(request{method: "POST", path: "/playlist", token: ann.AccessToken, body: map[string]any{"name": "Mix", "is_public": true}})
		wantStatus(t, r, http.StatusCreated, "")
		var pl playlistDetailView
		r.decode(t, &pl)
		wantStatus(t, e.do(request{method: "PUT", path: "/playlist/" + itoa(pl.ID) + "/songs", token: ann.AccessToken,
			body: map[string]any{"songs_id": []int64{f.ready.ID, f.other.ID}}}), http.StatusOK, "")
		wantStatus(t, e.do(request{method: "POST", path: "/songs/" + itoa(f.ready.ID) + "/like", token: ann.AccessToken}), http.StatusNoContent, "")
		e.postEventsOK(t, ann, event("p-1", f.ready.ID, e.clock.Now().Add(-10*time.Minute), 200_000))

		if err := e.store.TakeDown(ctx, f.ready.ID, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, e.get("/songs/"+itoa(f.ready.ID), ann.AccessToken), http.StatusNotFound, "")
		hidden := func(where string, v songView) {
			t.Helper()
			if v.ID != f.ready.ID || v.Status != statusUnavailable || v.Title != "" || v.Album.ID != 0 || len(v.Artists) != 0 {
				t.Errorf("%s: taken-down song shown as %+v", where, v)
			}
		}
		for _, token := range []string{ann.AccessToken, ""} {
			got, r := getJSON[playlistDetailView](e, "/playlist/"+itoa(pl.ID)+"?include_songs=true", token)
			if got.Songs == nil || len(got.Songs.Items) != 2 || got.Songs.Items[1].Song.Title != f.other.Title {
				t.Fatalf("playlist = %s", r.body)
			}
			hidden("playlist", got.Songs.Items[0].Song)
			if strings.Contains(string(r.body), f.ready.Title) {
				t.Errorf("playlist names the taken-down song: %s", r.body)
			}
		}
		liked, r := getJSON[page[likedSongView]](e, "/users/me/liked-songs", ann.AccessToken)
		if len(liked.Items) != 1 {
			t.Fatalf("liked = %s", r.body)
		}
		hidden("liked songs", liked.Items[0].Song)
		recent, r := getJSON[page[recentPlayView]](e, "/users/me/recently-played", ann.AccessToken)
		if len(recent.Items) != 1 {
			t.Fatalf("recently played = %s", r.body)
		}
		hidden("recently played", recent.Items[0].Song)
	})
}

// TestAccountInputRules: emails are compared after NFKC (fullwidth and
// decomposed spellings are the same address) and may not mix confusable
// scripts; display names need a visible character; the most common
// passwords and all-blank ones are refused.
func TestAccountInputRules(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		e.register("ann@example.com", "Ann")
		e.register("jos\u00e9@example.com", "José")
		reg := func(email, pw, name string) response {
			t.Helper()
			return e.do(request{method: "POST", path: "/auth/register", body: map[string]string{"email": email, "password": pw, "display_name": name}})
		}
		for _, tc := range []struct {
			name, email, pw, display string
			status                   int
			code                     string
		}{
			{"fullwidth email", "\uff41\uff4e\uff4e@example.com", "a fine passphrase", "A", 409, "email_taken"},
			{"fullwidth at sign and case", "ANN\uff20EXAMPLE.COM", "a fine passphrase", "A", 409, "email_taken"},
			{"decomposed email", "jose\u0301@example.com", "a fine passphrase", "J", 409, "email_taken"},
			{"cyrillic a in the name", "p\u0430ypal@example.com", "a fine passphrase", "P", 400, "mixed_scripts"},
			{"cyrillic a in the domain", "ann@ex\u0430mple.com", "a fine passphrase", "P", 400, "mixed_scripts"},
			{"invisible display name", "zed@example.com", "a fine passphrase", "\u200b\u2060", 400, "no_visible_characters"},
			{"common password", "zed@example.com", "password1", "Zed", 400, "common_password"},
			{"common password, shouted", "zed@example.com", "QWERTYUIOP", "Zed", 400, "common_password"},
			{"blank password", "zed@example.com", "          ", "Zed", 400, "blank_password"},
			{"short password", "zed@example.com", "tiny", "Zed", 400, "too_short"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := reg(tc.email, tc.pw, tc.display)
				wantStatus(t, r, tc.status, tc.code)
			})
		}
		// Single-script addresses in other scripts, and Latin with Han,
		// are fine.
		wantStatus(t, reg("\u0430\u043d\u043d\u0430@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "a fine passphrase", "Анна"), http.StatusCreated, "")
		wantStatus(t, reg("li\u674e@example.com", "a fine passphrase", "Li"), http.StatusCreated, "")
		// The fullwidth spelling logs in to the plain account.
		r := e.do(request{method: "POST", path: "/auth/login", body: map[string]string{"email": "\uff41\uff4e\uff4e@example.com", "password": "pw-ann@example.com"}})
		wantStatus(t, r, http.StatusOK, "")
	})
}

// TestPlaylistIfMatchGarbage: an If-Match that is no snapshot id is 400,
// not 412 (which says the playlist changed).
func TestPlaylistIfMatchGarbage(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		ann := e.register("ann@example.com", "Ann")
		r := e.do(request{method: "POST", path: "/playlist", token: ann.AccessToken, body: map[string]any{"name": "Mix"}})
		wantStatus(t, r, http.StatusCreated, "")
		var pl playlistDetailView
		r.decode(t, &pl)
		for _, v := range []string{"garbage", `"x"`, "W/\"\"", `"` + pl.SnapshotID + `", "` + pl.SnapshotID + `"`} {
			r := e.do(request{method: "PATCH", path: "/playlist/" + itoa(pl.ID), token: ann.AccessToken,
				body: map[string]any{"name": "New"}, header: map[string]string{"If-Match": v}})
			wantStatus(t, r, http.StatusBadRequest, "invalid_if_match")
		}
		r = e.do(request{method: "PATCH", path: "/playlist/" + itoa(pl.ID), token: ann.AccessToken,
			body: map[string]any{"name": "New"}, header: map[string]string{"If-Match": `"` + pl.SnapshotID + `"`}})
		wantStatus(t, r, http.StatusOK, "")
	})
}
