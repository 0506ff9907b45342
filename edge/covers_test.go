package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"riff/internal/blob"
	"riff/internal/blobkey"
)

const coverHash = "00112233445566778899aabbccddeeff"

// TestCoversWithoutToken: the edge serves album covers under /covers/
// with no token and long, immutable caching, and still refuses every other
// path that has no token (none of them reaches the origin).
func TestCoversWithoutToken(t *testing.T) {
	root := t.TempDir()
	fs, err := blob.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	ctx := context.Background()
	put := func(key string, data []byte) {
		t.Helper()
		if _, err := fs.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	img := append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte("cover"), 1000)...)
	coverKey := blobkey.CoverKey(1, 2, coverHash, 300)
	put(coverKey, img)
	media := songA + "aac_128.mp4"
	put(media, bytes.Repeat([]byte("m"), 4096))
	put(blobkey.OriginalsRoot+"3/1.flac", []byte("fLaC"))
	h := newHarness(t, harnessOptions{root: root})

	path := blobkey.CoverPath(1, 2, coverHash, 300)
	for i, want := range []string{"MISS", "HIT"} {
		r := h.do("GET", h.url+path)
		if r.status != 200 || !bytes.Equal(r.body, img) || r.get("X-Cache") != want {
			t.Fatalf("GET %s #%d = %d X-Cache %q (%d bytes), want 200 %s", path, i, r.status, r.get("X-Cache"), len(r.body), want)
		}
		if cc := r.get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("Cache-Control %q", cc)
		}
		if ct := r.get("Content-Type"); ct != "image/jpeg" {
			t.Errorf("Content-Type %q", ct)
		}
	}
	if r := h.do("HEAD", h.url+path); r.status != 200 || r.get("Content-Length") != "5003" {
		t.Errorf("HEAD %s = %d, Content-Length %q", path, r.status, r.get("Content-Length"))
	}
	if r := h.do("GET", h.url+path, "Range", "bytes=0-2"); r.status != 206 || !bytes.Equal(r.body, img[:3]) {
		t.Errorf("GET %s bytes=0-2 = %d %q", path, r.status, r.body)
	}
	// A cover that does not exist is a plain 404.
	if r := h.do("GET", h.url+blobkey.CoverPath(1, 2, coverHash, 640)); r.status != 404 {
		t.Errorf("missing cover = %d, want 404", r.status)
	}

	n := h.origins[0].requests()
	for _, p := range []struct {
		path   string
		status int
	}{
		{"/" + coverKey, 404},
		{"/" + media, 404},
		{"/artists/1/albums/2/", 404},
		{"/t//" + media, 403},
		{"/t/x/" + media, 403},
		{"/t//" + coverKey, 403},
		{"/covers/1/2/" + coverHash + "/300.jpg/../../../songs/3/v1/aac_128.mp4", 404},
		{"/covers/1/2/../../../" + media, 404},
		{"/covers/1/2/songs/3/v1/aac_128.mp4", 404},
		{"/covers/1/2/" + coverHash + "/aac_128.mp4", 404},
		{"/covers/1/2/" + coverHash + "/301.jpg", 404},
		{"/covers/1/2/" + coverHash + "%2F300.jpg", 404},
		{"/covers/1/%32/" + coverHash + "/300.jpg", 404},
		{"/covers/originals/3/1.flac", 404},
		{"/covers/" + media, 404},
		{"/covers/", 404},
		{"/covers", 404},
		{"/", 404},
	} {
		if r := h.do("GET", h.url+p.path); r.status != p.status {
			t.Errorf("GET %s = %d, want %d", p.path, r.status, p.status)
		}
	}
	if got := h.origins[0].requests(); got != n {
		t.Errorf("refused paths made %d origin requests", got-n)
	}

	// A replaced cover is gone once its folder is purged.
	if err := os.Remove(filepath.Join(root, filepath.FromSlash(coverKey))); err != nil {
		t.Fatal(err)
	}
	if r := h.do("GET", h.url+path); r.status != 200 || r.get("X-Cache") != "HIT" {
		t.Fatalf("before the purge: %d %s", r.status, r.get("X-Cache"))
	}
	folder := blobkey.CoverFolder(1, 2, coverHash)
	body, _ := json.Marshal(map[string][]string{"prefixes": {folder}})
	r, err := doRequest(h.client, "POST", h.admin+"/purge", body, "Authorization", "Bearer "+h.purgeToken("artists/1/albums/2/"))
	if err != nil || r.status != 200 {
		t.Fatalf("purge %s = %d %s, %v", folder, r.status, r.body, err)
	}
	if r := h.do("GET", h.url+path); r.status != 404 {
		t.Errorf("after the purge: %d, want 404", r.status)
	}
}
