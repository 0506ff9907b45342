package catalogd

import (
	"net/http"
	"strconv"
	"testing"
)

func TestStudioReads(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	stranger := e.register("stranger@example.com", "Stranger")

	var mine page[artistView]
	r := e.get("/users/me/artists", f.owner.AccessToken)
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &mine)
	if len(mine.Items) != 1 || mine.Items[0].ID != f.artist.ID || mine.Total != 1 || mine.Next != nil {
		t.Errorf("GET /users/me/artists (owner) = %+v, want the one artist %d", mine, f.artist.ID)
	}

	var none page[artistView]
	r = e.get("/users/me/artists", stranger.AccessToken)
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &none)
	if len(none.Items) != 0 || none.Total != 0 {
		t.Errorf("GET /users/me/artists (not an artist) = %+v, want none", none)
	}

	var albums page[albumView]
	r = e.get("/artists/"+strconv.FormatInt(f.artist.ID, 10)+"/albums", "")
	wantStatus(t, r, http.StatusOK, "")
	r.decode(t, &albums)
	if len(albums.Items) != 1 || albums.Items[0].ID != f.album.ID || albums.Items[0].Artist.ID != f.artist.ID {
		t.Errorf("GET /artists/%d/albums = %+v, want album %d", f.artist.ID, albums, f.album.ID)
	}

	for _, tc := range []struct {
		path, token string
		status      int
		code        string
	}{
		{"/users/me/artists", "", 401, "unauthenticated"},
		{"/users/me/artists?x=1", f.owner.AccessToken, 400, ""},
		{"/artists/999999/albums", "", 404, "not_found"},
		{"/artists/abc/albums", "", 400, ""},
	} {
		wantStatus(t, e.get(tc.path, tc.token), tc.status, tc.code)
	}
}
