package catalogd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/testrun"
	"riff/keygen"
)

// apiClient talks JSON to a catalogd started by Run.
type apiClient struct {
	t     *testing.T
	base  string
	token string
}

func (c apiClient) call(method, path string, body io.Reader, contentType string, out any) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && res.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if res.StatusCode >= 300 && out != nil {
		c.t.Logf("%s %s = %d %s", method, path, res.StatusCode, b)
	}
	return res.StatusCode
}

func (c apiClient) json(method, path string, in, out any) int {
	c.t.Helper()
	b, _ := json.Marshal(in)
	return c.call(method, path, bytes.NewReader(b), "application/json", out)
}

func (c apiClient) login(email, password string) apiClient {
	c.t.Helper()
	var tr tokenResponse
	if code := c.json("POST", "/auth/login", map[string]string{"email": email, "password": password}, &tr); code != 200 {
		c.t.Fatalf("login = %d", code)
	}
	c.token = tr.AccessToken
	return c
}

// TestCrashMidPackaging stops catalogd (cancels its Run) while a job is
// transcoding, leaves behind what a hard crash would (a worker's lease
// that nobody renews and partial objects in the version folder), starts
// catalogd again on the same data, and checks that the song ends ready
// with exactly one set of objects and rows.
// uploadUntilTranscoding registers who@example.com on the catalogd at
// base, makes an artist and a single, uploads seconds of a tone titled
// title, and returns the logged-in client and the song once its job is
// transcoding and busy (nil: nothing more) holds. logs go into failure
// messages.
func uploadUntilTranscoding(t *testing.T, base, who, title string, seconds float64, busy func() bool, logs any) (apiClient, songView) {
	t.Helper()
	c := apiClient{t: t, base: base}
	if code := c.json("POST", "/auth/register", map[string]string{"email": who + "@example.com", "password": "long enough pw", "display_name": who}, &struct{}{}); code != 201 {
		t.Fatalf("register = %d\n%s", code, logs)
	}
	c = c.login(who+"@example.com", "long enough pw")
	var artist artistView
	c.json("POST", "/artists", map[string]string{"name": who + " tones"}, &artist)
	var album albumView
	if code := c.json("POST", "/albums", map[string]any{"artist_id": artist.ID, "title": "Unstable", "type": "single"}, &album); code != 201 {
		t.Fatalf("create album = %d", code)
	}
	data, _ := os.ReadFile(synth(t, t.TempDir(), "long.flac", 330, seconds))
	body, ct := multipartBody(t, [][2]string{{"album_id", itoa(album.ID)}, {"title", title}}, "long.flac", data)
	var song songView
	if code := c.call("POST", "/songs", bytes.NewReader(body), ct, &song); code != 202 {
		t.Fatalf("upload = %d", code)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var v songView
		c.call("GET", "/songs/"+itoa(song.ID), nil, "", &v)
		if v.Processing != nil && v.Processing.Stage == "transcode" && (busy == nil || busy()) {
			return c, song
		}
		if v.Status != store.StatusProcessing || time.Now().After(deadline) {
			t.Fatalf("never saw it transcoding: %+v %+v\n%s", v, v.Processing, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashMidPackaging(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := keygen.Run(context.Background(), []string{"-dir", keys}, noEnv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	db := "file:" + filepath.Join(dir, "riff.db")
	blobDir := filepath.Join(dir, "blob")
	args := []string{"-listen", "127.0.0.1:0", "-db", db, "-blob", blobDir, "-keys", keys, "-upload-dir", t.TempDir(),
		"-argon2-memory", "64KiB", "-argon2-time", "1", "-workers", "1", "-encodes", "1", "-job-lease", "2s"}
	addr, _, logs, stop := startRun(t, args...)
	// Wait until it is transcoding, then stop catalogd.
	c, song := uploadUntilTranscoding(t, "http://"+addr, "crash", "Survivor", 40, nil, logs)
	if err := stop(); err != nil {
		t.Fatalf("Run after cancel = %v\n%s", err, logs)
	}

	// What a hard crash leaves: a worker that claimed the job and died,
	// and objects of a half-written version.
	ctx := context.Background()
	st, err := store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j, ok, err := st.ClaimJob(ctx, "worker-that-dies", 2*time.Second)
	if err != nil || !ok || j.SongID != song.ID {
		t.Fatalf("the stopped job was not handed back: %+v, %v, %v", j, ok, err)
	}
	so, _ := st.SongByID(ctx, song.ID)
	st.Close()
	bs, err := blob.NewFS(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	prefix := blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, 1)
	for _, name := range []string{"aac_64.mp4", "ogg_320.ogg", "stray.tmp"} {
		if _, err := bs.Put(ctx, prefix+name, strings.NewReader("half-written"), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Start again on the same data: the dead worker's lease runs out and
	// the job is claimed again.
	addr, _, logs, stop = startRun(t, args...)
	c = apiClient{t: t, base: "http://" + addr}.login("crash@example.com", "long enough pw")
	deadline := time.Now().Add(3 * time.Minute)
	var v songView
	for {
		v = songView{}
		c.call("GET", "/songs/"+itoa(song.ID), nil, "", &v)
		if v.Status != store.StatusProcessing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("song still processing: %+v\n%s", v.Processing, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Errorf("second Run = %v", err)
	}
	if v.Status != store.StatusReady || !strings.Contains(v.HLSURL, "/v1/") || v.Title != "Survivor" {
		t.Fatalf("after restart: %+v", v)
	}

	// Exactly one set of objects and rows.
	var names []string
	for info, err := range bs.List(ctx, blobkey.SongFolder(so.AlbumArtistID, so.AlbumID, so.ID)) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, strings.TrimPrefix(info.Key, prefix))
		if info.Size == int64(len("half-written")) {
			t.Errorf("%s is still the half-written object", info.Key)
		}
	}
	want := []string{"aac_128.m3u8", "aac_128.mp4", "aac_320.m3u8", "aac_320.mp4", "aac_64.m3u8", "aac_64.mp4",
		"manifest.mpd", "master.m3u8", "ogg_128.ogg", "ogg_320.ogg", "ogg_64.ogg"}
	if !slices.Equal(names, want) {
		t.Errorf("objects of the song:\n%v\nwant\n%v", names, want)
	}
	st, err = store.Open(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, _ := st.Renditions(ctx, so.ID, 1)
	songs, _ := st.AlbumSongs(ctx, so.AlbumID, false)
	jobs, _ := st.Jobs(ctx, so.ID)
	if len(rs) != 6 || len(songs) != 1 || len(jobs) != 1 || jobs[0].State != store.JobDone || jobs[0].Attempts != 2 {
		t.Errorf("rows: %d renditions, %d songs, jobs %+v", len(rs), len(songs), jobs)
	}
}
