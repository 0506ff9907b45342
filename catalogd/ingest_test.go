package catalogd

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/ingest"
	"riff/catalogd/store"
	"riff/catalogd/store/storetest"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/testrun"
	"riff/packager"
)

// ingestEnv is an env that takes uploads: a blob folder, a small packager
// ladder and job workers.
type ingestEnv struct {
	*env
	blob      *blob.FS
	uploadDir string
	stopJobs  func()
}

func newIngestEnv(t testing.TB, tweak ...func(*Config, *auth.Argon2Params)) *ingestEnv {
	t.Helper()
	return newIngestEnvDB(t, "file:"+filepath.Join(t.TempDir(), "riff.db"), tweak...)
}

// eachIngestEnv runs fn against an ingestEnv on SQLite and, when
// RIFF_TEST_POSTGRES is set, on PostgreSQL.
func eachIngestEnv(t *testing.T, fn func(t *testing.T, e *ingestEnv), tweak ...func(*Config, *auth.Argon2Params)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newIngestEnv(t, tweak...)) })
	t.Run("postgres", func(t *testing.T) { fn(t, newIngestEnvDB(t, storetest.PostgresDSN(t), tweak...)) })
}

// newIngestEnvDB is newIngestEnv on the database dsn.
func newIngestEnvDB(t testing.TB, dsn string, tweak ...func(*Config, *auth.Argon2Params)) *ingestEnv {
	t.Helper()
	testrun.RequireFFmpeg(t)
	uploadDir := t.TempDir()
	tweak = append([]func(*Config, *auth.Argon2Params){func(c *Config, _ *auth.Argon2Params) {
		c.UploadDir = uploadDir
		c.JobPoll = 20 * time.Millisecond
	}}, tweak...)
	e := newEnvDB(t, dsn, tweak...)
	bs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bs.Close() })
	// The server is built; the ingest parts are set as NewServer would.
	e.srv.blob = bs
	ie := &ingestEnv{env: e, blob: bs, uploadDir: uploadDir}
	ie.setPackager(packager.New(packager.Config{Ladder: []int{64, 128}, Concurrency: 2, TempDir: t.TempDir()}))
	return ie
}

// setPackager gives the server and a new job worker pk, as NewServer
// would have.
func (e *ingestEnv) setPackager(pk *packager.Packager) {
	e.t.Helper()
	e.srv.pk = pk
	jobs, err := newJobs(e.srv.cfg, Deps{Obs: e.srv.obs, Store: e.store, Blob: e.blob, Packager: pk, Purged: e.srv.purged, Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv.jobs = jobs
}

// startJobs runs the job workers until the test ends (or stop is called).
func (e *ingestEnv) startJobs(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := e.srv.RunJobs(ctx); err != nil {
			t.Error(err)
		}
	})
	e.stopJobs = func() { cancel(); wg.Wait() }
	t.Cleanup(e.stopJobs)
}

// synth writes a FLAC (or another format, by extension) of a sine tone
// with ffmpeg, with optional metadata tags (key=value).
func synth(t testing.TB, dir, name string, freq float64, secs float64, tags ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	args := []string{"-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("sine=f=%g:d=%g:sample_rate=44100,aformat=channel_layouts=stereo", freq, secs)}
	for _, tag := range tags {
		args = append(args, "-metadata", tag)
	}
	switch filepath.Ext(name) {
	case ".aac":
		args = append(args, "-c:a", "aac", "-f", "adts")
	case ".m4a":
		args = append(args, "-c:a", "aac")
	case ".ogg":
		args = append(args, "-c:a", "libvorbis")
	}
	testrun.FFmpeg(t, append(args, out)...)
	return out
}

// multipartBody builds an upload form: fields in order, then the file
// part (when filename is not "") with data.
func multipartBody(t testing.TB, fields [][2]string, filename string, data []byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if filename != "" {
		h := textproto.MIMEHeader{}
		// Written by hand: CreateFormFile would escape nothing, but be explicit.
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, strings.ReplaceAll(filename, `"`, `\"`)))
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func (e *ingestEnv) upload(method, path, token string, fields [][2]string, filename string, data []byte) response {
	e.t.Helper()
	body, ct := multipartBody(e.t, fields, filename, data)
	return e.do(request{method: method, path: path, token: token, body: body, header: map[string]string{"Content-Type": ct}})
}

// waitSong polls GET /songs/{id} as token until ok says so.
// uploadTone uploads secs of a hz sine as a FLAC named name to f's album
// as its owner, wants 202 and returns the answer.
func (e *ingestEnv) uploadTone(t testing.TB, f fixture, name string, hz, secs float64) songView {
	t.Helper()
	data, err := os.ReadFile(synth(t, t.TempDir(), name, hz, secs))
	if err != nil {
		t.Fatal(err)
	}
	r := e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{{"album_id", itoa(f.album.ID)}}, name, data)
	wantStatus(t, r, http.StatusAccepted, "")
	var v songView
	r.decode(t, &v)
	return v
}

// wantNothingKept checks that refused uploads left nothing: f's album
// still has songs songs, and the blob store and the upload spool are empty.
func (e *ingestEnv) wantNothingKept(t *testing.T, f fixture, songs int) {
	t.Helper()
	after, _ := e.store.AlbumSongs(context.Background(), f.album.ID, false)
	if len(after) != songs {
		t.Errorf("album has %d songs after refused uploads, had %d", len(after), songs)
	}
	if ks := e.keys(t, ""); len(ks) != 0 {
		t.Errorf("blob store holds %v", ks)
	}
	if ents, _ := os.ReadDir(e.uploadDir); len(ents) != 0 {
		t.Errorf("upload spool holds %d files", len(ents))
	}
}

func (e *ingestEnv) waitSong(t testing.TB, id int64, token string, ok func(songView) bool) songView {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var v songView
		r := e.get("/songs/"+itoa(id), token)
		wantStatus(t, r, http.StatusOK, "")
		r.decode(t, &v)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			var keep []string
			for _, l := range strings.Split(e.logs.String(), "\n") {
				if !strings.Contains(l, `"msg":"request"`) {
					keep = append(keep, l)
				}
			}
			t.Fatalf("song %d never got there; last: %s\nlogs:\n%s", id, r.body, strings.Join(keep, "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keys lists the blob keys under prefix.
func (e *ingestEnv) keys(t *testing.T, prefix string) []string {
	t.Helper()
	var ks []string
	for info, err := range e.blob.List(context.Background(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, info.Key)
	}
	return ks
}

// packagedNames are the objects of a version with the test ladder.
var packagedNames = []string{"aac_128.m3u8", "aac_128.mp4", "aac_64.m3u8", "aac_64.mp4", "manifest.mpd", "master.m3u8", "ogg_128.ogg", "ogg_64.ogg"}

func (e *ingestEnv) wantVersion(t *testing.T, so store.Song, version int, present bool) {
	t.Helper()
	prefix := blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, version)
	var names []string
	for _, k := range e.keys(t, prefix) {
		names = append(names, strings.TrimPrefix(k, prefix))
	}
	want := packagedNames
	if !present {
		want = nil
	}
	if !slices.Equal(names, want) {
		t.Errorf("objects of v%d: %v, want %v", version, names, want)
	}
	rs, err := e.store.Renditions(context.Background(), so.ID, version)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(rs); (n == 4) != present || (n == 0) == present {
		t.Errorf("v%d has %d renditions (present %v)", version, n, present)
	}
}

func TestUploadPublishReplaceTakeDown(t *testing.T) {
	e := newIngestEnv(t)
	e.startJobs(t)
	f := e.fixture()
	dir := t.TempDir()
	src := synth(t, dir, "tone.flac", 440, 3, "title=Tag Title", "genre=Tagged", "track=7")
	data, _ := os.ReadFile(src)

	r := e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{{"album_id", itoa(f.album.ID)}, {"title", "Form Title"}}, "tone.flac", data)
	wantStatus(t, r, http.StatusAccepted, "")
	var v songView
	r.decode(t, &v)
	if v.Status != store.StatusProcessing || v.Processing == nil || v.Processing.Version != 1 || r.Header.Get("Location") != "/songs/"+itoa(v.ID) {
		t.Fatalf("202 answer %s (Location %q)", r.body, r.Header.Get("Location"))
	}
	v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status != store.StatusProcessing })
	if v.Status != store.StatusReady {
		t.Fatalf("song ended %s: %+v", v.Status, v.Processing)
	}
	// Form wins, tags fill the rest, the probe gives the duration.
	if v.Title != "Form Title" || v.Genre != "tagged" || v.TrackNumber != 7 || v.DurationMS < 2950 || v.DurationMS > 3050 {
		t.Errorf("published metadata %+v", v)
	}
	if !strings.Contains(v.HLSURL, "/v1/master.m3u8") || v.Processing != nil {
		t.Errorf("hls_url %q processing %+v", v.HLSURL, v.Processing)
	}
	so, _ := e.store.SongByID(context.Background(), v.ID)
	e.wantVersion(t, so, 1, true)
	if orig := e.keys(t, "originals/"+itoa(so.ID)+"/"); len(orig) != 1 || !strings.HasSuffix(orig[0], ".flac") {
		t.Errorf("originals: %v", orig)
	}
	jobs, _ := e.store.Jobs(context.Background(), so.ID)
	if len(jobs) != 1 || jobs[0].State != store.JobDone || jobs[0].Percent != 100 || jobs[0].Attempts != 1 {
		t.Errorf("jobs %+v", jobs)
	}

	// The same bytes again: 409 naming the song, nothing new.
	r = e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{{"album_id", itoa(f.album.ID)}}, "again.flac", data)
	wantStatus(t, r, http.StatusConflict, "duplicate_upload")
	if r.Header.Get("Location") != "/songs/"+itoa(so.ID) {
		t.Errorf("duplicate Location %q", r.Header.Get("Location"))
	}

	// A listener may not replace it; the owner may.
	listener := e.register("listener@example.com", "L")
	other, _ := os.ReadFile(synth(t, dir, "other.flac", 660, 2))
	r = e.upload("PUT", "/songs/"+itoa(so.ID)+"/audio", listener.AccessToken, nil, "other.flac", other)
	wantStatus(t, r, http.StatusForbidden, "not_owner")
	r = e.upload("PUT", "/songs/"+itoa(so.ID)+"/audio", f.owner.AccessToken, [][2]string{{"genre", "drone"}}, "other.flac", other)
	wantStatus(t, r, http.StatusAccepted, "")
	v = e.waitSong(t, so.ID, f.owner.AccessToken, func(v songView) bool { return strings.Contains(v.HLSURL, "/v2/") })
	if v.Title != "Form Title" || v.Genre != "drone" || v.DurationMS < 1950 || v.DurationMS > 2050 {
		t.Errorf("after replacement: %+v", v)
	}
	// v1 stays until no token can name it.
	e.wantVersion(t, so, 1, true)
	e.wantVersion(t, so, 2, true)
	e.clock.Advance(time.Hour + 2*time.Minute) // playback TTL + GC delay
	e.srv.jobs.Kick()
	f.owner = e.relogin("owner@example.com")
	listener = e.relogin("listener@example.com")
	waitFor(t, "v1 collected", func() bool { return len(e.keys(t, blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, 1))) == 0 })
	waitFor(t, "v1 GC job done", func() bool {
		js, _ := e.store.Jobs(context.Background(), so.ID)
		return js[len(js)-1].Kind == store.JobGC && js[len(js)-1].State == store.JobDone
	})
	e.wantVersion(t, so, 1, false)
	e.wantVersion(t, so, 2, true)
	metrics := string(e.get("/metrics", "").body)
	for _, m := range []string{`riff_jobs_total{kind="package",outcome="done"} 2`, `riff_jobs_total{kind="gc",outcome="done"} 1`,
		`riff_uploads_total{format="flac"} 3`, `riff_jobs_running 0`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %s", m)
		}
	}

	// Takedown: only the owner; then no playback URLs for anyone.
	r = e.do(request{method: "DELETE", path: "/songs/" + itoa(so.ID), token: listener.AccessToken})
	wantStatus(t, r, http.StatusForbidden, "not_owner")
	r = e.do(request{method: "DELETE", path: "/songs/" + itoa(so.ID), token: f.owner.AccessToken})
	wantStatus(t, r, http.StatusNoContent, "")
	wantStatus(t, e.get("/songs/"+itoa(so.ID), listener.AccessToken), http.StatusNotFound, "not_found")
	wantStatus(t, e.get("/songs/"+itoa(so.ID)+"/stream", listener.AccessToken), http.StatusNotFound, "not_found")
	r = e.get("/songs/"+itoa(so.ID), f.owner.AccessToken)
	v = songView{}
	r.decode(t, &v)
	if v.Status != store.StatusTakenDown || v.HLSURL != "" || v.StreamURL != "" {
		t.Errorf("owner's view of a taken-down song: %s", r.body)
	}
	wantStatus(t, e.get("/songs/"+itoa(so.ID)+"/stream", f.owner.AccessToken), http.StatusConflict, "not_playable")
	e.clock.Advance(time.Hour + 2*time.Minute)
	e.srv.jobs.Kick()
	waitFor(t, "v2 collected after takedown", func() bool {
		return len(e.keys(t, blobkey.SongFolder(so.AlbumArtistID, so.AlbumID, so.ID))) == 0
	})
}

// relogin logs in again (access tokens expire when the clock moves on).
func (e *env) relogin(email string) user {
	e.t.Helper()
	r := e.do(request{method: "POST", path: "/auth/login", body: map[string]string{"email": email, "password": "pw-" + email}})
	wantStatus(e.t, r, http.StatusOK, "")
	var tr tokenResponse
	r.decode(e.t, &tr)
	return user{tr, "pw-" + email}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestBadUploads(t *testing.T) {
	e := newIngestEnv(t, func(c *Config, _ *auth.Argon2Params) { c.UploadMaxBytes = 300 << 10 })
	e.startJobs(t)
	f := e.fixture()
	ctx := context.Background()
	listener := e.register("listener@example.com", "L")
	stranger := e.register("stranger@example.com", "S")
	r := e.do(request{method: "POST", path: "/artists", token: stranger.AccessToken, body: map[string]string{"name": "Stranger"}})
	wantStatus(t, r, http.StatusCreated, "")

	dir := t.TempDir()
	good, _ := os.ReadFile(synth(t, dir, "good.flac", 440, 2))
	whole, _ := os.ReadFile(synth(t, dir, "long.flac", 440, 6))
	big, _ := os.ReadFile(synth(t, dir, "big.wav", 440, 5)) // ~880 KB
	adts, _ := os.ReadFile(synth(t, dir, "raw.aac", 440, 2))
	album := [2]string{"album_id", itoa(f.album.ID)}

	cases := []struct {
		name     string
		token    string
		fields   [][2]string
		filename string
		data     []byte
		status   int
		code     string
	}{
		{"text file", f.owner.AccessToken, [][2]string{album}, "notes.flac", []byte("these are my lyrics, not audio\n"), 415, "unsupported_format"},
		{"zero bytes", f.owner.AccessToken, [][2]string{album}, "empty.flac", []byte{}, 400, "empty_file"},
		{"truncated flac", f.owner.AccessToken, [][2]string{album}, "cut.flac", whole[:len(whole)*6/10], 400, "undecodable"},
		{"flac header only", f.owner.AccessToken, [][2]string{album}, "head.flac", whole[:200], 400, "undecodable"},
		{"truncated raw aac", f.owner.AccessToken, [][2]string{album}, "raw.aac", adts[:len(adts)/2+3], 400, "undecodable"},
		{"over the size cap", f.owner.AccessToken, [][2]string{album}, "big.wav", big, 413, "upload_too_large"},
		{"listener", listener.AccessToken, [][2]string{album}, "good.flac", good, 403, "not_artist"},
		{"someone else's album", stranger.AccessToken, [][2]string{album}, "good.flac", good, 403, "not_owner"},
		{"missing album_id", f.owner.AccessToken, [][2]string{{"title", "T"}}, "good.flac", good, 400, "required"},
		{"no such album", f.owner.AccessToken, [][2]string{{"album_id", "999999"}}, "good.flac", good, 404, "album_not_found"},
		{"missing file", f.owner.AccessToken, [][2]string{album}, "", nil, 400, "required"},
		{"filename with a folder", f.owner.AccessToken, [][2]string{album}, "music/good.flac", good, 400, "invalid_filename"},
		{"filename climbing up", f.owner.AccessToken, [][2]string{album}, "../../good.flac", good, 400, "invalid_filename"},
		{"filename with a backslash", f.owner.AccessToken, [][2]string{album}, `C:\music\good.flac`, good, 400, "invalid_filename"},
		{"unknown field", f.owner.AccessToken, [][2]string{album, {"price", "9"}}, "good.flac", good, 400, "unknown_field"},
		{"bad track number", f.owner.AccessToken, [][2]string{album, {"track_no", "x"}}, "good.flac", good, 400, "invalid_number"},
		{"bad credits", f.owner.AccessToken, [][2]string{album, {"credits", `[{"artist_id":1,"role":"dj"}]`}}, "good.flac", good, 400, "invalid_enum"},
	}
	before, _ := e.store.AlbumSongs(ctx, f.album.ID, false)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.upload("POST", "/songs", tc.token, tc.fields, tc.filename, tc.data)
			wantStatus(t, r, tc.status, tc.code)
		})
	}
	t.Run("not multipart", func(t *testing.T) {
		r := e.do(request{method: "POST", path: "/songs", token: f.owner.AccessToken, body: map[string]any{"album_id": f.album.ID}})
		wantStatus(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type")
	})
	t.Run("anonymous", func(t *testing.T) {
		r := e.upload("POST", "/songs", "", [][2]string{album}, "good.flac", good)
		wantStatus(t, r, http.StatusUnauthorized, "unauthenticated")
	})

	// Nothing was kept: no songs, no objects, no spooled files.
	e.wantNothingKept(t, f, len(before))
	// The good files still go through; raw AAC is rewrapped into M4A.
	r = e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{album}, "good.flac", good)
	wantStatus(t, r, http.StatusAccepted, "")
	r = e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{album}, "raw.aac", adts)
	wantStatus(t, r, http.StatusAccepted, "")
	var v songView
	r.decode(t, &v)
	v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status != store.StatusProcessing })
	if v.Status != store.StatusReady || v.DurationMS < 1900 || v.DurationMS > 2100 {
		t.Errorf("raw AAC upload ended %+v %+v", v, v.Processing)
	}
	if orig := e.keys(t, "originals/"+itoa(v.ID)+"/"); len(orig) != 1 || !strings.HasSuffix(orig[0], ".m4a") {
		t.Errorf("original of the raw AAC upload: %v", orig)
	}
	if ents, _ := os.ReadDir(e.uploadDir); len(ents) != 0 {
		t.Errorf("upload folder holds %d files after good uploads", len(ents))
	}
}

func TestJobRetriesThenFailsWithReason(t *testing.T) {
	e := newIngestEnv(t, func(c *Config, _ *auth.Argon2Params) {
		c.JobAttempts = 2
		c.JobBackoff = time.Minute
	})
	f := e.fixture()
	v := e.uploadTone(t, f, "tone.flac", 440, 2)
	// Every encode fails from now on.
	e.setPackager(packager.New(packager.Config{FFmpeg: "false", Ladder: []int{64}, TempDir: t.TempDir()}))
	e.startJobs(t)
	v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool {
		return v.Processing != nil && v.Processing.Attempts == 1 && v.Processing.State == store.JobQueued
	})
	if v.Status != store.StatusProcessing || !strings.Contains(v.Processing.Error, "transcod") {
		t.Errorf("after the first attempt: %+v %+v", v, v.Processing)
	}
	e.clock.Advance(time.Minute) // the backoff
	e.srv.jobs.Kick()
	v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status == store.StatusFailed })
	if v.Processing == nil || v.Processing.State != store.JobFailed || v.Processing.Attempts != 2 || v.Processing.Error == "" {
		t.Errorf("failed song's job: %+v", v.Processing)
	}
	// Nothing was left in the version folder.
	so, _ := e.store.SongByID(context.Background(), v.ID)
	if ks := e.keys(t, blobkey.SongFolder(so.AlbumArtistID, so.AlbumID, so.ID)); len(ks) != 0 {
		t.Errorf("objects left by failed attempts: %v", ks)
	}
}

func TestMissingOriginalFailsAtOnce(t *testing.T) {
	e := newIngestEnv(t)
	f := e.fixture()
	v := e.uploadTone(t, f, "tone.flac", 440, 2)
	for _, k := range e.keys(t, "originals/") {
		e.blob.Delete(context.Background(), k)
	}
	e.startJobs(t)
	v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status == store.StatusFailed })
	if v.Processing == nil || v.Processing.Attempts != 1 || !strings.Contains(v.Processing.Error, "upload it again") {
		t.Errorf("job of a lost original: %+v", v.Processing)
	}
	// Others never see a failed song.
	other := e.register("x@example.com", "X")
	wantStatus(t, e.get("/songs/"+itoa(v.ID), other.AccessToken), http.StatusNotFound, "not_found")
}

func TestUploadsUnavailableWithoutBlobStore(t *testing.T) {
	e := newEnv(t)
	f := e.fixture()
	body, ct := multipartBody(t, [][2]string{{"album_id", itoa(f.album.ID)}}, "a.flac", []byte("fLaC"))
	r := e.do(request{method: "POST", path: "/songs", token: f.owner.AccessToken, body: body, header: map[string]string{"Content-Type": ct}})
	wantStatus(t, r, http.StatusServiceUnavailable, "uploads_unavailable")
}

// TestUploadProbedOnce: the packaging job uses the probe made when the
// upload arrived, kept with the upload: with no working ffprobe left, the
// song is still published, with the probe's metadata.
func TestUploadProbedOnce(t *testing.T) {
	eachIngestEnv(t, func(t *testing.T, e *ingestEnv) {
		f := e.fixture()
		v := e.uploadTone(t, f, "tone.flac", 440, 2)
		// From now on ffprobe fails: the job must not need it.
		e.setPackager(packager.New(packager.Config{FFprobe: "false", Ladder: []int{64, 128}, Concurrency: 2, TempDir: t.TempDir()}))
		e.startJobs(t)
		v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status != store.StatusProcessing })
		if v.Status != store.StatusReady || v.DurationMS < 1950 || v.DurationMS > 2050 {
			t.Fatalf("song ended %+v %+v", v, v.Processing)
		}
		so, _ := e.store.SongByID(context.Background(), v.ID)
		e.wantVersion(t, so, 1, true)
		jobs, _ := e.store.Jobs(context.Background(), so.ID)
		up, err := e.store.UploadByID(context.Background(), jobs[0].UploadID)
		if err != nil {
			t.Fatal(err)
		}
		if pr, ok := ingest.DecodeProbe(up.Probe); !ok || pr.Container != "flac" || pr.SampleRate != 44100 || pr.Channels != 2 {
			t.Errorf("the upload keeps the probe %q", up.Probe)
		}
	})
}
