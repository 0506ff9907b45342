package catalogd

import (
	"bytes"
	"context"
	"image"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"riff/catalogd/store"
	"riff/internal/blobkey"
	"riff/internal/cover"
	"riff/internal/cover/covertest"
	"riff/internal/testrun"
)

// putCover sends img as the body of PUT /albums/{id}/cover.
func (e *ingestEnv) putCover(albumID int64, token string, img []byte) response {
	e.t.Helper()
	return e.do(request{method: "PUT", path: "/albums/" + itoa(albumID) + "/cover", token: token, body: img,
		header: map[string]string{"Content-Type": "image/png"}}) // declared types are not trusted either way
}

// wantCover checks that v shows the cover named hash of f's album, and
// that each size is a square JPEG of that size in the blob store, without
// the metadata of the test images.
func (e *ingestEnv) wantCover(t *testing.T, f fixture, url string, sizes map[string]string, hash string) {
	t.Helper()
	for _, n := range blobkey.CoverSizes {
		want := "https://edge.example" + blobkey.CoverPath(f.artist.ID, f.album.ID, hash, n)
		if got := sizes[strconv.Itoa(n)]; got != want {
			t.Errorf("cover_sizes[%d] = %q, want %q", n, got, want)
		}
		if n == 300 && url != want {
			t.Errorf("cover_url = %q, want %q", url, want)
		}
		rc, _, err := e.blob.Get(context.Background(), blobkey.CoverKey(f.artist.ID, f.album.ID, hash, n), nil)
		if err != nil {
			t.Fatalf("size %d: %v", n, err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		img, err := jpeg.Decode(bytes.NewReader(data))
		if err != nil || img.Bounds() != image.Rect(0, 0, n, n) {
			t.Errorf("size %d: decodes to %v, %v; want %d×%d", n, boundsOf(img), err, n, n)
		}
		if bytes.Contains(data, []byte(covertest.Secret)) || bytes.Contains(data, []byte("Exif")) {
			t.Errorf("size %d keeps the source's metadata", n)
		}
	}
}

func boundsOf(img image.Image) image.Rectangle {
	if img == nil {
		return image.Rectangle{}
	}
	return img.Bounds()
}

func TestPutCover(t *testing.T) {
	eachIngestEnv(t, func(t *testing.T, e *ingestEnv) {
		f := e.fixture()
		ctx := context.Background()
		png := covertest.PNG(t, 400, 300)

		// Wrong users and refused images first: none of them stores
		// anything.
		stranger := e.register("stranger@example.com", "Stranger")
		wantStatus(t, e.putCover(f.album.ID, stranger.AccessToken, png), http.StatusForbidden, "not_owner")
		wantStatus(t, e.putCover(f.album.ID, "", png), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, e.putCover(f.album.ID+1000, f.owner.AccessToken, png), http.StatusNotFound, "")
		big := append(append([]byte{}, png...), make([]byte, cover.DefaultLimits.MaxBytes)...)
		for _, tc := range []struct {
			name   string
			body   []byte
			status int
			code   string
		}{
			{"png bomb 100000×100000", covertest.PNGHeader(100000, 100000), http.StatusUnprocessableEntity, "image_dimensions"},
			{"text", []byte("this is not an image, it is a shopping list"), http.StatusUnsupportedMediaType, "unsupported_image"},
			{"empty", nil, http.StatusUnsupportedMediaType, "unsupported_image"},
			{"truncated png", png[:len(png)/2], http.StatusBadRequest, "undecodable_image"},
			{"over the byte limit", big, http.StatusRequestEntityTooLarge, "cover_too_large"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantStatus(t, e.putCover(f.album.ID, f.owner.AccessToken, tc.body), tc.status, tc.code)
			})
		}
		if ks := e.keys(t, ""); len(ks) != 0 {
			t.Fatalf("refused covers left %v", ks)
		}

		// The artist's first cover.
		r := e.putCover(f.album.ID, f.owner.AccessToken, png)
		wantStatus(t, r, http.StatusOK, "")
		var v albumView
		r.decode(t, &v)
		first := cover.Hash(png)
		e.wantCover(t, f, v.CoverURL, v.CoverSizes, first)

		// It shows wherever the album or its songs do.
		var al albumView
		e.get("/albums/"+itoa(f.album.ID), "").decode(t, &al)
		if al.CoverURL != v.CoverURL || len(al.CoverSizes) != 3 || al.Songs == nil || len(*al.Songs) == 0 ||
			(*al.Songs)[0].Album.CoverURL != v.CoverURL || len((*al.Songs)[0].Album.CoverSizes) != 3 {
			t.Errorf("GET /albums/{id} shows cover %q %v", al.CoverURL, al.CoverSizes)
		}
		var so songView
		e.get("/songs/"+itoa(f.ready.ID), "").decode(t, &so)
		if so.Album.CoverURL != v.CoverURL || so.Album.CoverSizes["640"] != v.CoverSizes["640"] {
			t.Errorf("GET /songs/{id} shows album cover %q %v", so.Album.CoverURL, so.Album.CoverSizes)
		}

		// The same image again: nothing changes, nothing is purged.
		wantStatus(t, e.putCover(f.album.ID, f.owner.AccessToken, png), http.StatusOK, "")
		if es, _ := e.store.PendingPurges(ctx, 0, 100); len(es) != 0 {
			t.Fatalf("purges after the same cover again: %v", es)
		}

		// A replacement: new keys, the old ones deleted and purged.
		jpg := covertest.JPEG(t, 200, 500)
		r = e.putCover(f.album.ID, f.owner.AccessToken, jpg)
		wantStatus(t, r, http.StatusOK, "")
		r.decode(t, &v)
		second := cover.Hash(jpg)
		e.wantCover(t, f, v.CoverURL, v.CoverSizes, second)
		if ks := e.keys(t, blobkey.CoverFolder(f.artist.ID, f.album.ID, first)); len(ks) != 0 {
			t.Errorf("the replaced cover's objects remain: %v", ks)
		}
		es, err := e.store.PendingPurges(ctx, 0, 100)
		if err != nil || len(es) != 1 || es[0].Prefix != blobkey.CoverFolder(f.artist.ID, f.album.ID, first) {
			t.Errorf("PendingPurges = %+v, %v; want the first cover's folder", es, err)
		}
	})
}

// withArt writes a FLAC tone with pic embedded as its front cover.
func withArt(t *testing.T, dir, name string, hz float64, pic []byte) []byte {
	t.Helper()
	picPath := filepath.Join(dir, name+".jpg")
	if err := os.WriteFile(picPath, pic, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	testrun.FFmpeg(t, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=f="+strconv.FormatFloat(hz, 'f', -1, 64)+":d=1",
		"-i", picPath, "-map", "0:a", "-map", "1:v", "-c:a", "flac", "-c:v", "copy", "-disposition:v", "attached_pic", out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEmbeddedArtBecomesCover(t *testing.T) {
	eachIngestEnv(t, func(t *testing.T, e *ingestEnv) {
		f := e.fixture()
		dir := t.TempDir()
		art := covertest.JPEG(t, 500, 500)
		upload := func(name string, data []byte) songView {
			t.Helper()
			r := e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{{"album_id", itoa(f.album.ID)}}, name, data)
			wantStatus(t, r, http.StatusAccepted, "")
			var v songView
			r.decode(t, &v)
			return v
		}
		// Art the cover checks refuse (too small) does not fail the upload.
		upload("tiny.flac", withArt(t, dir, "tiny.flac", 330, covertest.JPEG(t, 8, 8)))
		var blank albumView
		e.get("/albums/"+itoa(f.album.ID), "").decode(t, &blank)
		if blank.CoverURL != "" || blank.CoverSizes != nil || !strings.Contains(e.logs.String(), "embedded art not used") {
			t.Fatalf("refused art: album cover %q %v", blank.CoverURL, blank.CoverSizes)
		}
		so := upload("first.flac", withArt(t, dir, "first.flac", 440, art))
		var al albumView
		e.get("/albums/"+itoa(f.album.ID), "").decode(t, &al)
		e.wantCover(t, f, al.CoverURL, al.CoverSizes, cover.Hash(art))
		if so.Album.CoverURL != al.CoverURL {
			t.Errorf("the upload's answer shows album cover %q, want %q", so.Album.CoverURL, al.CoverURL)
		}

		// The album has a cover now: a later upload's art is not used.
		if so := upload("second.flac", withArt(t, dir, "second.flac", 550, covertest.JPEG(t, 300, 300))); so.Album.CoverURL != al.CoverURL {
			t.Errorf("the second upload's answer shows album cover %q, want %q", so.Album.CoverURL, al.CoverURL)
		}
		var again albumView
		e.get("/albums/"+itoa(f.album.ID), "").decode(t, &again)
		if again.CoverURL != al.CoverURL {
			t.Errorf("a second upload's art replaced the cover: %q, was %q", again.CoverURL, al.CoverURL)
		}
		var folders []string
		for _, k := range e.keys(t, blobkey.AlbumFolder(f.artist.ID, f.album.ID)+"covers/") {
			folders = append(folders, k[:strings.LastIndexByte(k, '/')])
		}
		if folders = slices.Compact(folders); len(folders) != 1 {
			t.Errorf("cover folders %v, want one", folders)
		}
	})
}

// An album whose artist gave a link shows it until it has a cover of its
// own; a cover of its own wins.
func TestCoverLinkUntilOwnCover(t *testing.T) {
	e := newIngestEnv(t)
	f := e.fixture()
	if _, err := e.store.UpdateAlbum(context.Background(), f.album.ID, store.AlbumUpdate{CoverURL: ptr("https://img.example/a.jpg")}); err != nil {
		t.Fatal(err)
	}
	var al albumView
	e.get("/albums/"+itoa(f.album.ID), "").decode(t, &al)
	if al.CoverURL != "https://img.example/a.jpg" || al.CoverSizes != nil {
		t.Errorf("cover_url %q, sizes %v; want the link and no sizes", al.CoverURL, al.CoverSizes)
	}
	wantStatus(t, e.putCover(f.album.ID, f.owner.AccessToken, covertest.PNG(t, 64, 64)), http.StatusOK, "")
	e.get("/albums/"+itoa(f.album.ID), "").decode(t, &al)
	if !strings.HasPrefix(al.CoverURL, "https://edge.example/covers/") {
		t.Errorf("cover_url %q, want the album's own cover", al.CoverURL)
	}
}

func ptr[T any](v T) *T { return &v }

// TestDeleteCover: the album's artist removes its cover: the album shows
// none, the images are deleted and their folder purged; others may not,
// and removing no cover changes nothing.
func TestDeleteCover(t *testing.T) {
	eachIngestEnv(t, func(t *testing.T, e *ingestEnv) {
		f := e.fixture()
		ctx := context.Background()
		del := func(albumID int64, token string) response {
			return e.do(request{method: "DELETE", path: "/albums/" + itoa(albumID) + "/cover", token: token})
		}
		png := covertest.PNG(t, 300, 300)
		wantStatus(t, e.putCover(f.album.ID, f.owner.AccessToken, png), http.StatusOK, "")
		folder := blobkey.CoverFolder(f.artist.ID, f.album.ID, cover.Hash(png))
		if ks := e.keys(t, folder); len(ks) != len(blobkey.CoverSizes) {
			t.Fatalf("cover objects %v", ks)
		}

		stranger := e.register("stranger@example.com", "Stranger")
		wantStatus(t, del(f.album.ID, stranger.AccessToken), http.StatusForbidden, "not_owner")
		wantStatus(t, del(f.album.ID, ""), http.StatusUnauthorized, "unauthenticated")
		wantStatus(t, del(f.album.ID+1000, f.owner.AccessToken), http.StatusNotFound, "")
		if ks := e.keys(t, folder); len(ks) != len(blobkey.CoverSizes) {
			t.Fatalf("refused deletes removed objects: %v", ks)
		}

		r := del(f.album.ID, f.owner.AccessToken)
		wantStatus(t, r, http.StatusOK, "")
		var v albumView
		r.decode(t, &v)
		if v.CoverURL != "" || len(v.CoverSizes) != 0 {
			t.Errorf("after DELETE the album shows cover %q %v", v.CoverURL, v.CoverSizes)
		}
		var so songView
		e.get("/songs/"+itoa(f.ready.ID), "").decode(t, &so)
		if so.Album.CoverURL != "" || len(so.Album.CoverSizes) != 0 {
			t.Errorf("after DELETE the song shows album cover %q %v", so.Album.CoverURL, so.Album.CoverSizes)
		}
		if ks := e.keys(t, folder); len(ks) != 0 {
			t.Errorf("the removed cover's objects remain: %v", ks)
		}
		es, err := e.store.PendingPurges(ctx, 0, 100)
		if err != nil || len(es) != 1 || es[0].Prefix != folder {
			t.Errorf("PendingPurges = %+v, %v; want the removed cover's folder", es, err)
		}

		// Again: nothing to remove, nothing more purged.
		wantStatus(t, del(f.album.ID, f.owner.AccessToken), http.StatusOK, "")
		if es, _ := e.store.PendingPurges(ctx, 0, 100); len(es) != 1 {
			t.Errorf("purges after removing no cover: %+v", es)
		}
	})
}
