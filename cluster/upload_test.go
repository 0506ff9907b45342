package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"riff/internal/testrun"
)

// spooled returns the bytes in the instances' upload folders.
func spooled(dirs ...string) int64 {
	var n int64
	for _, d := range dirs {
		filepath.WalkDir(d, func(_ string, e fs.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				if fi, err := e.Info(); err == nil {
					n += fi.Size()
				}
			}
			return nil
		})
	}
	return n
}

// TestUploadStreamed: an upload through the balancer reaches catalogd
// while the player is still sending it (the first half is in an
// instance's upload folder before the second half leaves the client: no
// buffering in HAProxy), and the song it makes becomes ready (packaged by
// whichever instance claims the job, into the shared blob folder).
func TestUploadStreamed(t *testing.T) {
	testrun.RequireFFmpeg(t)
	c := start(t, 2)
	u := user(t, c.URL, "artist")
	var artist, album struct {
		ID int64 `json:"id"`
	}
	u.must("POST", "/artists", map[string]string{"name": "Streamers"}, 201, &artist)
	u.must("POST", "/albums", map[string]any{"artist_id": artist.ID, "title": "Through", "type": "single"}, 201, &album)

	// White noise does not compress: about 1.4 MB of FLAC.
	src := filepath.Join(t.TempDir(), "noise.flac")
	testrun.FFmpeg(t, "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "anoisesrc=d=8:c=white:r=44100:a=0.5", "-ac", "2", src)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	mw.WriteField("album_id", fmt.Sprint(album.ID))
	mw.WriteField("title", "Streamed")
	if _, err := mw.CreateFormFile("file", "noise.flac"); err != nil {
		t.Fatal(err)
	}
	var trailer bytes.Buffer
	fmt.Fprintf(&trailer, "\r\n--%s--\r\n", mw.Boundary())
	half := len(data) / 2

	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", c.URL+"/songs", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+u.token)
	req.ContentLength = int64(head.Len() + len(data) + trailer.Len())
	type answer struct {
		code int
		body []byte
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- answer{code: resp.StatusCode, body: b}
	}()
	if _, err := pw.Write(append(head.Bytes(), data[:half]...)); err != nil {
		t.Fatal(err)
	}
	// The first half must reach an instance's spool while the rest waits here.
	deadline := time.Now().Add(30 * time.Second)
	for spooled(c.UploadDir(0), c.UploadDir(1)) < int64(half)/2 {
		if time.Now().After(deadline) {
			pw.CloseWithError(io.ErrUnexpectedEOF)
			t.Fatalf("after half the upload (%d bytes) the instances' upload folders hold %d bytes: the balancer holds the body back", half, spooled(c.UploadDir(0), c.UploadDir(1)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := pw.Write(append(data[half:], trailer.Bytes()...)); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	a := <-answered
	if a.err != nil || a.code != 202 {
		t.Fatalf("upload through the balancer = %d %v %s, want 202", a.code, a.err, a.body)
	}
	var song struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(a.body, &song); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(3 * time.Minute)
	for song.Status != "ready" {
		if song.Status != "processing" || time.Now().After(deadline) {
			t.Fatalf("song %d: %q, want it ready", song.ID, song.Status)
		}
		time.Sleep(200 * time.Millisecond)
		u.must("GET", fmt.Sprintf("/songs/%d", song.ID), nil, 200, &song)
	}
}
