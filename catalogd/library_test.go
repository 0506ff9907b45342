package catalogd

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/catalogd/store/storetest"
)

// eachEnv runs fn against a catalogd on SQLite and, when
// RIFF_TEST_POSTGRES is set, on PostgreSQL.
func eachEnv(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newEnv(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, newEnvDB(t, storetest.PostgresDSN(t))) })
}

// librarySongs adds n more ready songs to the fixture's album.
func (e *env) librarySongs(f fixture, n int) []int64 {
	e.t.Helper()
	var ids []int64
	for i := range n {
		so, err := e.store.CreateSong(context.Background(), store.NewSong{AlbumID: f.album.ID, Title: fmt.Sprintf("Track %d", i),
			TrackNumber: 20 + i, DurationMS: 200_000, Genre: "post-rock", Status: store.StatusReady, CurrentVersion: 1})
		if err != nil {
			e.t.Fatal(err)
		}
		ids = append(ids, so.ID)
	}
	return ids
}

// playlistSongs reads the song ids of a playlist in order through the
// API, checking positions and the total.
func (e *env) playlistSongs(t *testing.T, path, token string) (ids []int64, items []playlistItemView, snapshot string) {
	t.Helper()
	r := e.get(path+"?include_songs=true&limit=100", token)
	wantStatus(t, r, http.StatusOK, "")
	var v playlistDetailView
	r.decode(t, &v)
	if v.Songs == nil || v.Songs.Total != v.ItemCount || len(v.Songs.Items) != min(100, v.ItemCount) {
		t.Fatalf("playlist songs page = %s", r.body)
	}
	for i, it := range v.Songs.Items {
		if it.Position != i {
			t.Fatalf("item %d has position %d", i, it.Position)
		}
		ids = append(ids, it.Song.ID)
	}
	if r.Header.Get("ETag") != `"`+v.SnapshotID+`"` {
		t.Errorf("ETag %q, snapshot %q", r.Header.Get("ETag"), v.SnapshotID)
	}
	return ids, v.Songs.Items, v.SnapshotID
}

func TestPlaylistAPI(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ann := e.register("ann@example.com", "Ann")
		bob := e.register("bob@example.com", "Bob")
		s := e.librarySongs(f, 5)
		a, b, c, d, x := s[0], s[1], s[2], s[3], s[4]

		r := e.do(request{method: "POST", path: "/playlist", token: ann.AccessToken, body: map[string]any{"name": " My favourites ", "is_public": false}})
		wantStatus(t, r, http.StatusCreated, "")
		var pl playlistDetailView
		r.decode(t, &pl)
		if pl.Name != "My favourites" || pl.IsPublic || pl.ItemCount != 0 || pl.SnapshotID == "" || pl.Owner.ID != ann.User.ID ||
			r.Header.Get("Location") != "/playlists/"+itoa(pl.ID) {
			t.Fatalf("created = %s", r.body)
		}
		one, many := "/playlist/"+itoa(pl.ID), "/playlists/"+itoa(pl.ID)
		snaps := map[string]bool{pl.SnapshotID: true}
		add := func(path string, body any, wantPositions ...int) playlistEditView {
			t.Helper()
			r := e.do(request{method: "PUT", path: path + "/songs", token: ann.AccessToken, body: body})
			wantStatus(t, r, http.StatusOK, "")
			var ev playlistEditView
			r.decode(t, &ev)
			if snaps[ev.SnapshotID] {
				t.Errorf("edit reused snapshot %s", ev.SnapshotID)
			}
			snaps[ev.SnapshotID] = true
			var got []int
			for _, it := range ev.Added {
				got = append(got, it.Position)
			}
			if wantPositions != nil && !slices.Equal(got, wantPositions) {
				t.Errorf("added at %v, want %v", got, wantPositions)
			}
			return ev
		}
		want := func(ids ...int64) string {
			t.Helper()
			got, _, snap := e.playlistSongs(t, many, ann.AccessToken)
			if !slices.Equal(got, ids) {
				t.Fatalf("order %v, want %v", got, ids)
			}
			return snap
		}
		add(one, map[string]any{"songs_id": []int64{a, b}}, 0, 1)                 // append
		add(many, map[string]any{"songs_id": []int64{c}, "position": 0}, 0)       // start
		add(one, map[string]any{"songs_id": []int64{d, a}, "position": 2}, 2, 3)  // middle, a again
		ev := add(many, map[string]any{"songs_id": []int64{x}, "position": 5}, 5) // end by position
		if ev.ItemCount != 6 {
			t.Errorf("item_count %d", ev.ItemCount)
		}
		want(c, a, d, a, b, x)
		// Reorder: the first two to the end, then the last to the start.
		add(one, map[string]any{"range_start": 0, "range_length": 2, "insert_before": 6})
		want(d, a, b, x, c, a)
		add(many, map[string]any{"range_start": 5, "insert_before": 0})
		snap := want(a, d, a, b, x, c)

		// Removal: every occurrence by song id, one by item id.
		r = e.do(request{method: "DELETE", path: many + "/songs/" + itoa(a), token: ann.AccessToken})
		wantStatus(t, r, http.StatusOK, "")
		r.decode(t, &ev)
		if ev.Removed != 2 || ev.ItemCount != 4 {
			t.Errorf("remove song = %s", r.body)
		}
		_, items, _ := e.playlistSongs(t, many, ann.AccessToken)
		r = e.do(request{method: "DELETE", path: one + "/items/" + itoa(items[1].ItemID), token: ann.AccessToken})
		wantStatus(t, r, http.StatusOK, "")
		want(d, x, c)
		wantStatus(t, e.do(request{method: "DELETE", path: one + "/items/" + itoa(items[1].ItemID), token: ann.AccessToken}), http.StatusNotFound, "not_in_playlist")
		wantStatus(t, e.do(request{method: "DELETE", path: many + "/songs/" + itoa(a), token: ann.AccessToken}), http.StatusNotFound, "not_in_playlist")

		// Snapshots: a stale If-Match is refused (412) and changes nothing,
		// one that is no snapshot id is a bad request (400); the current
		// one (quoted, as an ETag) goes through.
		r = e.do(request{method: "PUT", path: many + "/songs", token: ann.AccessToken, body: map[string]any{"songs_id": []int64{a}},
			header: map[string]string{"If-Match": snap}})
		wantStatus(t, r, http.StatusPreconditionFailed, "stale_snapshot")
		wantStatus(t, e.do(request{method: "DELETE", path: many + "/songs/" + itoa(d), token: ann.AccessToken,
			header: map[string]string{"If-Match": "garbage"}}), http.StatusBadRequest, "invalid_if_match")
		cur := want(d, x, c)
		r = e.do(request{method: "PUT", path: many + "/songs", token: ann.AccessToken, body: map[string]any{"songs_id": []int64{a}},
			header: map[string]string{"If-Match": `"` + cur + `"`}})
		wantStatus(t, r, http.StatusOK, "")
		want(d, x, c, a)

		// Private: invisible to others and to anonymous callers.
		for _, token := range []string{"", bob.AccessToken} {
			wantStatus(t, e.get(one, token), http.StatusNotFound, "playlist_not_found")
		}
		wantStatus(t, e.do(request{method: "PUT", path: one + "/songs", token: bob.AccessToken, body: map[string]any{"songs_id": []int64{a}}}), http.StatusNotFound, "playlist_not_found")
		wantStatus(t, e.do(request{method: "PUT", path: one + "/followers", token: bob.AccessToken}), http.StatusNotFound, "playlist_not_found")

		// Made public: visible, searchable, followable, still not bob's to edit.
		r = e.do(request{method: "PATCH", path: many, token: ann.AccessToken, body: map[string]any{"name": "Glacier drive", "is_public": true, "description": "cold"}})
		wantStatus(t, r, http.StatusOK, "")
		r.decode(t, &pl)
		if !pl.IsPublic || pl.Name != "Glacier drive" || pl.Description != "cold" || pl.ItemCount != 4 {
			t.Errorf("patched = %s", r.body)
		}
		r = e.get(one, "")
		wantStatus(t, r, http.StatusOK, "")
		if strings.Contains(string(r.body), `"songs"`) {
			t.Errorf("songs sent without include_songs: %s", r.body)
		}
		if ids, _, _ := e.playlistSongs(t, one, ""); !slices.Equal(ids, []int64{d, x, c, a}) {
			t.Errorf("anonymous sees %v", ids)
		}
		wantStatus(t, e.do(request{method: "DELETE", path: many + "/songs/" + itoa(a), token: bob.AccessToken}), http.StatusForbidden, "not_owner")
		wantStatus(t, e.do(request{method: "PATCH", path: many, token: bob.AccessToken, body: `{"name":"mine"}`}), http.StatusForbidden, "not_owner")
		r = e.get("/search?q=glacier&type=playlist", "")
		wantStatus(t, r, http.StatusOK, "")
		if !strings.Contains(string(r.body), `"Glacier drive"`) {
			t.Errorf("public playlist not found by search: %s", r.body)
		}
		for range 2 {
			wantStatus(t, e.do(request{method: "PUT", path: many + "/followers", token: bob.AccessToken}), http.StatusNoContent, "")
		}
		r = e.do(request{method: "POST", path: "/playlists", token: bob.AccessToken, body: map[string]any{"name": "Bob's own"}})
		wantStatus(t, r, http.StatusCreated, "")
		e.clock.Advance(time.Second)
		r = e.get("/users/me/playlists", bob.AccessToken)
		wantStatus(t, r, http.StatusOK, "")
		var mine page[playlistDetailView]
		r.decode(t, &mine)
		if mine.Total != 2 || mine.Items[0].Name != "Bob's own" || mine.Items[1].ID != pl.ID || mine.Items[1].Followers != 1 {
			t.Errorf("bob's playlists = %s", r.body)
		}
		wantStatus(t, e.do(request{method: "DELETE", path: one + "/followers", token: bob.AccessToken}), http.StatusNoContent, "")
		r = e.get("/users/me/playlists", bob.AccessToken)
		r.decode(t, &mine)
		if mine.Total != 1 {
			t.Errorf("after unfollowing: %s", r.body)
		}

		// Delete.
		wantStatus(t, e.do(request{method: "DELETE", path: one, token: bob.AccessToken}), http.StatusForbidden, "not_owner")
		wantStatus(t, e.do(request{method: "DELETE", path: one, token: ann.AccessToken}), http.StatusNoContent, "")
		wantStatus(t, e.get(many, ann.AccessToken), http.StatusNotFound, "playlist_not_found")
	})
}

func TestPlaylistBadInput(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ann := e.register("ann@example.com", "Ann")
		bob := e.register("bob@example.com", "Bob")
		r := e.do(request{method: "POST", path: "/playlists", token: ann.AccessToken, body: map[string]any{"name": "Mine"}})
		wantStatus(t, r, http.StatusCreated, "")
		var pl playlistDetailView
		r.decode(t, &pl)
		path := "/playlists/" + itoa(pl.ID)
		wantStatus(t, e.do(request{method: "PUT", path: path + "/songs", token: ann.AccessToken, body: map[string]any{"songs_id": []int64{f.ready.ID}}}), http.StatusOK, "")
		ids101 := make([]int64, 101)
		for i := range ids101 {
			ids101[i] = f.ready.ID
		}
		for _, tc := range []struct {
			name        string
			body        any
			status      int
			code, field string
			detail      string
		}{
			{"unknown songs", `{"songs_id":[` + itoa(f.ready.ID) + `, 999998, 999999]}`, 400, "unknown_songs", "songs_id", "999998, 999999"},
			{"song not ready", map[string]any{"songs_id": []int64{f.hidden.ID}}, 400, "unknown_songs", "songs_id", itoa(f.hidden.ID)},
			{"position past the end", map[string]any{"songs_id": []int64{f.ready.ID}, "position": 2}, 400, "out_of_range", "position", ""},
			{"negative position", map[string]any{"songs_id": []int64{f.ready.ID}, "position": -1}, 400, "out_of_range", "position", ""},
			{"101 songs", map[string]any{"songs_id": ids101}, 400, "too_many", "songs_id", "101"},
			{"no songs", `{"songs_id":[]}`, 400, "required", "songs_id", ""},
			{"empty object", `{}`, 400, "required", "songs_id", ""},
			{"string id", `{"songs_id":["12"]}`, 400, "invalid_type", "songs_id", ""},
			{"fractional id", `{"songs_id":[1.5]}`, 400, "invalid_type", "songs_id", ""},
			{"zero id", `{"songs_id":[0]}`, 400, "invalid_id", "songs_id", ""},
			{"huge id", `{"songs_id":[99999999999999999999]}`, 400, "invalid_type", "songs_id", ""},
			{"add and reorder", map[string]any{"songs_id": []int64{f.ready.ID}, "range_start": 0, "insert_before": 1}, 400, "conflicting_fields", "songs_id", ""},
			{"reorder without insert_before", `{"range_start":0}`, 400, "required", "insert_before", ""},
			{"reorder out of range", `{"range_start":3,"insert_before":0}`, 400, "out_of_range", "range_start", ""},
			{"reorder zero length", `{"range_start":0,"range_length":0,"insert_before":1}`, 400, "out_of_range", "range_length", ""},
			{"unknown field", `{"songs_id":[1],"uris":[]}`, 400, "unknown_field", "uris", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do(request{method: "PUT", path: path + "/songs", token: ann.AccessToken, body: tc.body})
				wantStatus(t, r, tc.status, tc.code)
				if p := r.problem(); p.Field != tc.field || !strings.Contains(p.Detail, tc.detail) {
					t.Errorf("problem %s, want field %q and %q in the detail", r.body, tc.field, tc.detail)
				}
			})
		}
		// Nothing was added by any of those.
		if ids, _, _ := e.playlistSongs(t, path, ann.AccessToken); !slices.Equal(ids, []int64{f.ready.ID}) {
			t.Errorf("after bad adds: %v", ids)
		}
		for _, tc := range []struct {
			method, path, token string
			body                any
			status              int
			code                string
		}{
			{"PUT", path + "/songs", bob.AccessToken, map[string]any{"songs_id": []int64{f.ready.ID}}, 404, "playlist_not_found"},
			{"PUT", path + "/songs", "", map[string]any{"songs_id": []int64{f.ready.ID}}, 401, "unauthenticated"},
			{"PUT", "/playlists/abc/songs", ann.AccessToken, map[string]any{"songs_id": []int64{f.ready.ID}}, 400, "invalid_id"},
			{"PUT", "/playlists/999999/songs", ann.AccessToken, map[string]any{"songs_id": []int64{f.ready.ID}}, 404, "playlist_not_found"},
			{"DELETE", path + "/songs/x1", ann.AccessToken, nil, 400, "invalid_id"},
			{"DELETE", path + "/items/0", ann.AccessToken, nil, 400, "invalid_id"},
			{"GET", "/playlist/-3", ann.AccessToken, nil, 400, "invalid_id"},
			{"GET", path + "?include_songs=yes", ann.AccessToken, nil, 400, "invalid_enum"},
			{"GET", path + "?include_songs=true&limit=101", ann.AccessToken, nil, 400, "out_of_range"},
			{"POST", "/playlist", ann.AccessToken, `{"name":""}`, 400, "required"},
			{"POST", "/playlist", ann.AccessToken, `{"name":"x","is_public":"yes"}`, 400, "invalid_type"},
			{"POST", "/playlist", ann.AccessToken, `{"name":"` + strings.Repeat("n", 101) + `"}`, 400, "too_long"},
			{"PATCH", path, ann.AccessToken, `{"name":null}`, 400, "required"},
			{"PATCH", path, ann.AccessToken, `{"is_public":null}`, 400, "required"},
		} {
			wantStatus(t, e.do(request{method: tc.method, path: tc.path, token: tc.token, body: tc.body}), tc.status, tc.code)
		}
	})
}

// TestPlaylistFull fills a playlist to the limit through the API.
func TestPlaylistFull(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	ann := e.register("ann@example.com", "Ann")
	r := e.do(request{method: "POST", path: "/playlists", token: ann.AccessToken, body: map[string]any{"name": "Huge"}})
	var pl playlistDetailView
	r.decode(t, &pl)
	ids := slices.Repeat([]int64{f.ready.ID}, store.MaxPlaylistAdd)
	for range store.MaxPlaylistItems / store.MaxPlaylistAdd {
		wantStatus(t, e.do(request{method: "PUT", path: "/playlist/" + itoa(pl.ID) + "/songs", token: ann.AccessToken, body: map[string]any{"songs_id": ids}}), http.StatusOK, "")
	}
	r = e.do(request{method: "PUT", path: "/playlist/" + itoa(pl.ID) + "/songs", token: ann.AccessToken, body: map[string]any{"songs_id": ids[:1], "position": 5000}})
	wantStatus(t, r, http.StatusBadRequest, "playlist_full")
	if !strings.Contains(r.problem().Detail, "10000") {
		t.Errorf("detail %q does not say the limit", r.problem().Detail)
	}
	// Deep pages of a full playlist.
	r = e.get("/playlists/"+itoa(pl.ID)+"?include_songs=true&limit=100&offset=9950", ann.AccessToken)
	wantStatus(t, r, http.StatusOK, "")
	var v playlistDetailView
	r.decode(t, &v)
	if len(v.Songs.Items) != 50 || v.Songs.Items[0].Position != 9950 || v.Songs.Next != nil || v.Songs.Total != 10000 {
		t.Errorf("last page: %d items from %d, next %v", len(v.Songs.Items), v.Songs.Items[0].Position, v.Songs.Next)
	}
}

// TestPlaylistConcurrentRequests: concurrent adds without If-Match all
// land; with the same If-Match exactly one wins.
func TestPlaylistConcurrentRequests(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ann := e.register("ann@example.com", "Ann")
		r := e.do(request{method: "POST", path: "/playlists", token: ann.AccessToken, body: map[string]any{"name": "Busy"}})
		var pl playlistDetailView
		r.decode(t, &pl)
		path := "/playlists/" + itoa(pl.ID) + "/songs"
		const n = 12
		statuses := make(chan int, 2*n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pos := []any{0, nil}[i%2]
				body := map[string]any{"songs_id": []int64{f.ready.ID, f.other.ID}}
				if pos != nil {
					body["position"] = pos
				}
				statuses <- e.do(request{method: "PUT", path: path, token: ann.AccessToken, body: body}).StatusCode
			}()
		}
		wg.Wait()
		for range n {
			if s := <-statuses; s != http.StatusOK {
				t.Fatalf("concurrent add: %d", s)
			}
		}
		ids, _, snap := e.playlistSongs(t, "/playlists/"+itoa(pl.ID), ann.AccessToken)
		if len(ids) != 2*n {
			t.Fatalf("%d items after %d adds of 2", len(ids), n)
		}
		for i := 0; i < len(ids); i += 2 {
			if ids[i] != f.ready.ID || ids[i+1] != f.other.ID {
				t.Fatalf("adds interleaved: %v", ids)
			}
		}
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses <- e.do(request{method: "DELETE", path: path + "/" + itoa(f.ready.ID), token: ann.AccessToken,
					header: map[string]string{"If-Match": snap}}).StatusCode
			}()
		}
		wg.Wait()
		close(statuses)
		got := map[int]int{}
		for s := range statuses {
			got[s]++
		}
		if got[http.StatusOK] != 1 || got[http.StatusPreconditionFailed] != n-1 {
			t.Errorf("same If-Match from %d requests: %v", n, got)
		}
	})
}

func TestLikesAndFollowsAPI(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ann := e.register("ann@example.com", "Ann")
		bob := e.register("bob@example.com", "Bob")
		for _, id := range []int64{f.ready.ID, f.other.ID} {
			for range 2 {
				wantStatus(t, e.do(request{method: "POST", path: "/songs/" + itoa(id) + "/like", token: ann.AccessToken}), http.StatusNoContent, "")
			}
			e.clock.Advance(time.Second)
		}
		wantStatus(t, e.do(request{method: "POST", path: "/songs/" + itoa(f.hidden.ID) + "/like", token: ann.AccessToken}), http.StatusNotFound, "not_found")
		wantStatus(t, e.do(request{method: "POST", path: "/songs/0/like", token: ann.AccessToken}), http.StatusBadRequest, "invalid_id")
		wantStatus(t, e.do(request{method: "POST", path: "/songs/1/like"}), http.StatusUnauthorized, "unauthenticated")
		r := e.get("/users/me/liked-songs?limit=50&offset=0", ann.AccessToken)
		wantStatus(t, r, http.StatusOK, "")
		var liked page[likedSongView]
		r.decode(t, &liked)
		if liked.Total != 2 || liked.Items[0].Song.ID != f.other.ID || liked.Items[1].Song.ID != f.ready.ID || !*liked.Items[0].Song.Liked {
			t.Errorf("liked songs = %s", r.body)
		}
		likedFlag := func(token string) *bool {
			r := e.get("/songs/"+itoa(f.ready.ID), token)
			wantStatus(t, r, http.StatusOK, "")
			var v songView
			r.decode(t, &v)
			return v.Liked
		}
		if l := likedFlag(ann.AccessToken); l == nil || !*l {
			t.Error("ann's liked song does not say liked")
		}
		if l := likedFlag(bob.AccessToken); l == nil || *l {
			t.Error("bob sees liked")
		}
		if l := likedFlag(""); l != nil {
			t.Error("anonymous caller sees a liked flag")
		}
		r = e.get("/albums/"+itoa(f.album.ID), ann.AccessToken)
		var al albumView
		r.decode(t, &al)
		for _, so := range *al.Songs {
			if so.Liked == nil || *so.Liked != (so.ID == f.ready.ID || so.ID == f.other.ID) {
				t.Errorf("album song %d liked = %v", so.ID, so.Liked)
			}
		}
		for range 2 {
			wantStatus(t, e.do(request{method: "DELETE", path: "/songs/" + itoa(f.ready.ID) + "/like", token: ann.AccessToken}), http.StatusNoContent, "")
		}
		if l := likedFlag(ann.AccessToken); *l {
			t.Error("unliked song still liked")
		}

		artist := "/users/me/follow/" + itoa(f.artist.ID)
		for _, u := range []user{ann, ann, bob} {
			wantStatus(t, e.do(request{method: "POST", path: artist, token: u.AccessToken}), http.StatusNoContent, "")
		}
		r = e.get("/artists/"+itoa(f.artist.ID), "")
		var av artistView
		r.decode(t, &av)
		if av.Followers == nil || *av.Followers != 2 || av.PlayCount == nil {
			t.Errorf("artist = %s", r.body)
		}
		r = e.get("/users/me/following", ann.AccessToken)
		wantStatus(t, r, http.StatusOK, "")
		var fl page[followedArtistView]
		r.decode(t, &fl)
		if fl.Total != 1 || fl.Items[0].Artist.ID != f.artist.ID || fl.Items[0].Artist.Followers == nil || *fl.Items[0].Artist.Followers != 2 {
			t.Errorf("following = %s", r.body)
		}
		for range 2 {
			wantStatus(t, e.do(request{method: "DELETE", path: artist, token: ann.AccessToken}), http.StatusNoContent, "")
		}
		e.get("/artists/"+itoa(f.artist.ID), "").decode(t, &av)
		if *av.Followers != 1 {
			t.Errorf("followers after ann unfollowed twice: %d", *av.Followers)
		}
		wantStatus(t, e.do(request{method: "POST", path: "/users/me/follow/999999", token: ann.AccessToken}), http.StatusNotFound, "artist_not_found")
		wantStatus(t, e.do(request{method: "POST", path: "/users/me/follow/abc", token: ann.AccessToken}), http.StatusBadRequest, "invalid_id")
		wantStatus(t, e.get("/users/me/following?limit=0", ann.AccessToken), http.StatusBadRequest, "out_of_range")
	})
}

// event is a play event body.
func event(id string, song int64, started time.Time, ms int64) map[string]any {
	return map[string]any{"event_id": id, "song_id": song, "started_at": started.Format(time.RFC3339Nano), "ms_played": ms, "source": "album", "completed": ms > 100_000}
}

func TestEventsAPI(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ann := e.register("ann@example.com", "Ann")
		now := e.clock.Now()
		batch := map[string]any{"events": []any{
			event("a-1", f.ready.ID, now.Add(-10*time.Minute), 300_000),
			event("a-2", f.other.ID, now.Add(-5*time.Minute), 29_000), // too short to count
			event("a-3", f.other.ID, now.Add(-2*time.Minute), 45_000),
		}}
		post := func(body any) eventsResponse {
			t.Helper()
			r := e.do(request{method: "POST", path: "/events", token: ann.AccessToken, body: body})
			wantStatus(t, r, http.StatusOK, "")
			var res eventsResponse
			r.decode(t, &res)
			return res
		}
		if res := post(batch); res.Recorded != 3 || res.Counted != 2 || res.Duplicates != 0 || len(res.Rejected) != 0 {
			t.Errorf("first post = %+v", res)
		}
		if res := post(batch); res.Recorded != 0 || res.Counted != 0 || res.Duplicates != 3 || len(res.Rejected) != 0 {
			t.Errorf("replayed post = %+v", res)
		}
		r := e.get("/users/me/recently-played", ann.AccessToken)
		wantStatus(t, r, http.StatusOK, "")
		var recent page[recentPlayView]
		r.decode(t, &recent)
		if recent.Total != 2 || recent.Items[0].Song.ID != f.other.ID || recent.Items[1].Song.ID != f.ready.ID ||
			!recent.Items[0].PlayedAt.Equal(now.Add(-2*time.Minute)) {
			t.Errorf("recently played = %s", r.body)
		}
		if so, _ := e.store.SongByID(context.Background(), f.other.ID); so.Popularity != 1 {
			t.Errorf("popularity %d after one counted play", so.Popularity)
		}
		var av artistView
		e.get("/artists/"+itoa(f.artist.ID), "").decode(t, &av)
		if *av.PlayCount != 2 {
			t.Errorf("artist play count %d", *av.PlayCount)
		}

		big := make([]any, store.MaxEventBatch+1)
		for i := range big {
			big[i] = event(fmt.Sprintf("big-%d", i), f.ready.ID, now, 60_000)
		}
		okEvent := event("ok-1", f.ready.ID, now, 60_000)
		for _, tc := range []struct {
			name        string
			body        any
			status      int
			code, field string
		}{
			{"oversized batch", map[string]any{"events": big}, 413, "too_many_events", "events"},
			{"unknown song", map[string]any{"events": []any{okEvent, event("u-1", 999999, now, 60_000)}}, 400, "unknown_songs", "events"},
			{"bad event id", map[string]any{"events": []any{okEvent, event("has space", f.ready.ID, now, 60_000)}}, 400, "invalid_event_id", "events[1].event_id"},
			{"long event id", map[string]any{"events": []any{event(strings.Repeat("e", 65), f.ready.ID, now, 60_000)}}, 400, "invalid_event_id", "events[0].event_id"},
			{"negative ms", map[string]any{"events": []any{event("n-1", f.ready.ID, now, -1)}}, 400, "out_of_range", "events[0].ms_played"},
			{"zero song", map[string]any{"events": []any{event("z-1", 0, now, 60_000)}}, 400, "invalid_id", "events[0].song_id"},
			{"bad source", `{"events":[{"event_id":"s","song_id":1,"started_at":"2025-06-01T12:00:00Z","ms_played":1,"source":"radio"}]}`, 400, "invalid_enum", "events[0].source"},
			{"bad time", `{"events":[{"event_id":"s","song_id":1,"started_at":"yesterday","ms_played":1,"source":"album"}]}`, 400, "invalid_time", "events[0].started_at"},
			{"string song id", `{"events":[{"event_id":"s","song_id":"1","started_at":"2025-06-01T12:00:00Z","ms_played":1,"source":"album"}]}`, 400, "invalid_type", "events.song_id"},
			{"no events", `{}`, 400, "required", "events"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := e.do(request{method: "POST", path: "/events", token: ann.AccessToken, body: tc.body})
				wantStatus(t, r, tc.status, tc.code)
				if p := r.problem(); p.Field != tc.field {
					t.Errorf("field %q, want %q (%s)", p.Field, tc.field, r.body)
				}
				if tc.code == "unknown_songs" && !strings.Contains(r.problem().Detail, "999999") {
					t.Errorf("detail does not name the song: %s", r.body)
				}
			})
		}
		// None of the refused batches recorded anything.
		if res := post(map[string]any{"events": []any{okEvent}}); res.Recorded != 1 {
			t.Errorf("ok-1 after refused batches = %+v", res)
		}
		wantStatus(t, e.do(request{method: "POST", path: "/events", body: batch}), http.StatusUnauthorized, "unauthenticated")
	})
}

// TestTrendingFromEventHistory seeds plays through POST /events and reads
// GET /songs/trending: recent plays outweigh more, older ones.
func TestTrendingFromEventHistory(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		extra := e.librarySongs(f, 1)[0]
		now := e.clock.Now()
		var users []user
		for i := range 6 {
			users = append(users, e.register(fmt.Sprintf("l%d@example.com", i), "L"))
		}
		plays := func(song int64, n int, ago time.Duration) {
			for i := range n {
				u := users[i%len(users)]
				r := e.do(request{method: "POST", path: "/events", token: u.AccessToken, body: map[string]any{"events": []any{
					event(fmt.Sprintf("%d-%d-%d", song, ago, i), song, now.Add(-ago), 120_000)}}})
				wantStatus(t, r, http.StatusOK, "")
			}
		}
		plays(f.ready.ID, 6, 72*time.Hour) // 6 × 1/8
		plays(f.other.ID, 2, time.Hour)    // ~2
		plays(extra, 3, 24*time.Hour)      // 1.5
		r := e.get("/songs/trending?genre=post-rock", "")
		wantStatus(t, r, http.StatusOK, "")
		var tr trendingResponse
		r.decode(t, &tr)
		var got []int64
		for _, so := range tr.Items {
			got = append(got, so.ID)
		}
		if want := []int64{f.other.ID, extra, f.ready.ID}; !slices.Equal(got, want) {
			t.Errorf("trending = %v, want %v", got, want)
		}
	})
}

// TestPlaylistAliases runs every playlist route at both the singular and
// the plural path.
func TestPlaylistAliases(t *testing.T) {
	eachEnv(t, func(t *testing.T, e *env) {
		f := e.fixture()
		ann := e.register("ann@example.com", "Ann")
		bob := e.register("bob@example.com", "Bob")
		for _, prefix := range []string{"/playlist", "/playlists"} {
			r := e.do(request{method: "POST", path: prefix, token: ann.AccessToken, body: map[string]any{"name": "P", "is_public": true}})
			wantStatus(t, r, http.StatusCreated, "")
			var pl playlistDetailView
			r.decode(t, &pl)
			p := prefix + "/" + itoa(pl.ID)
			wantStatus(t, e.get(p, ""), http.StatusOK, "")
			wantStatus(t, e.do(request{method: "PATCH", path: p, token: ann.AccessToken, body: `{"description":"d"}`}), http.StatusOK, "")
			r = e.do(request{method: "PUT", path: p + "/songs", token: ann.AccessToken, body: map[string]any{"songs_id": []int64{f.ready.ID, f.other.ID, f.ready.ID}}})
			wantStatus(t, r, http.StatusOK, "")
			var ev playlistEditView
			r.decode(t, &ev)
			wantStatus(t, e.do(request{method: "PUT", path: p + "/songs", token: ann.AccessToken, body: `{"range_start":2,"insert_before":0}`}), http.StatusOK, "")
			wantStatus(t, e.do(request{method: "DELETE", path: p + "/items/" + itoa(ev.Added[1].ItemID), token: ann.AccessToken}), http.StatusOK, "")
			wantStatus(t, e.do(request{method: "DELETE", path: p + "/songs/" + itoa(f.ready.ID), token: ann.AccessToken}), http.StatusOK, "")
			wantStatus(t, e.do(request{method: "PUT", path: p + "/followers", token: bob.AccessToken}), http.StatusNoContent, "")
			var got playlistDetailView
			e.get(p, "").decode(t, &got)
			if got.ItemCount != 0 || got.Followers != 1 || got.Description != "d" {
				t.Errorf("%s after edits: %+v", p, got)
			}
			wantStatus(t, e.do(request{method: "DELETE", path: p + "/followers", token: bob.AccessToken}), http.StatusNoContent, "")
			wantStatus(t, e.do(request{method: "DELETE", path: p, token: ann.AccessToken}), http.StatusNoContent, "")
			wantStatus(t, e.get(p, ""), http.StatusNotFound, "playlist_not_found")
		}
	})
}
