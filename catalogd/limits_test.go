package catalogd

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/store"
	"riff/internal/testrun"
	"riff/packager"
)

// TestUploadDurationIsMeasured (issue 14, item 1): the duration is what
// the file holds, counted by decoding it, never what its header says. A
// FLAC whose STREAMINFO claims 2 s but holds more than -max-duration is
// refused with 400 bad_duration, and so is one holding an hour of 8 kHz
// silence, within seconds (the decode stops at the limit), with nothing
// kept in the database, the blob store or the spool; a FLAC claiming 2 s
// that holds 6 s is published as 6 s.
func TestUploadDurationIsMeasured(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	over := synth(t, dir, "over.flac", 440, 14)
	testrun.SetFLACSamples(t, over, 2*44100)
	hour := filepath.Join(dir, "hour.flac")
	testrun.FFmpeg(t, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "3600", "-c:a", "flac", hour)
	testrun.SetFLACSamples(t, hour, 2*8000)
	six := synth(t, dir, "six.flac", 440, 6)
	testrun.SetFLACSamples(t, six, 2*44100)

	eachIngestEnv(t, func(t *testing.T, e *ingestEnv) {
		e.setPackager(packager.New(packager.Config{MaxDuration: 10 * time.Second, Ladder: []int{64, 128}, Concurrency: 2, TempDir: t.TempDir()}))
		e.startJobs(t)
		f := e.fixture()
		ctx := context.Background()
		before, _ := e.store.AlbumSongs(ctx, f.album.ID, false)
		album := [][2]string{{"album_id", itoa(f.album.ID)}}
		for _, path := range []string{over, hour} {
			data, _ := os.ReadFile(path)
			start := time.Now()
			r := e.upload("POST", "/songs", f.owner.AccessToken, album, filepath.Base(path), data)
			wantStatus(t, r, http.StatusBadRequest, "bad_duration")
			if p := r.problem(); !strings.Contains(p.Detail, "10s") {
				t.Errorf("%s: the refusal does not name the limit: %s", filepath.Base(path), r.body)
			}
			if el := time.Since(start); el > 10*time.Second {
				t.Errorf("%s: refused after %v; the decode should stop at the 10s limit", filepath.Base(path), el)
			}
		}
		e.wantNothingKept(t, f, len(before))

		data, _ := os.ReadFile(six)
		r := e.upload("POST", "/songs", f.owner.AccessToken, album, "six.flac", data)
		wantStatus(t, r, http.StatusAccepted, "")
		var v songView
		r.decode(t, &v)
		v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status != store.StatusProcessing })
		if v.Status != store.StatusReady || v.DurationMS < 5950 || v.DurationMS > 6050 {
			t.Errorf("a 6 s file claiming 2 s was published as %+v %+v", v, v.Processing)
		}
		jobs, _ := e.store.Jobs(ctx, v.ID)
		if up, err := e.store.UploadByID(ctx, jobs[0].UploadID); err != nil || up.DurationMS < 5950 || up.DurationMS > 6050 {
			t.Errorf("the upload row keeps duration %d ms (%v), want the measured 6000", up.DurationMS, err)
		}
	})
}

// TestUploadDecodeTimeoutIs422: a decode check that runs out of time is
// the file's problem, answered 422 decode_timeout with the reason, not 503
// "try again".
func TestUploadDecodeTimeoutIs422(t *testing.T) {
	e := newIngestEnv(t)
	e.setPackager(packager.New(packager.Config{CheckTimeout: time.Millisecond, Ladder: []int{64}, TempDir: t.TempDir()}))
	f := e.fixture()
	data, _ := os.ReadFile(synth(t, t.TempDir(), "tone.flac", 440, 2))
	r := e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{{"album_id", itoa(f.album.ID)}}, "tone.flac", data)
	wantStatus(t, r, http.StatusUnprocessableEntity, "decode_timeout")
	if p := r.problem(); !strings.Contains(p.Detail, "longer than") {
		t.Errorf("422 without the reason: %s", r.body)
	}
}

// TestJobOverItsTimeLimitIsNotRetried: an encode that runs out of its time
// limit (which grows with the audio the file holds) fails the job at once:
// the input's fault, not a transient error.
func TestJobOverItsTimeLimitIsNotRetried(t *testing.T) {
	e := newIngestEnv(t, func(c *Config, _ *auth.Argon2Params) { c.JobAttempts = 3 })
	f := e.fixture()
	v := e.uploadTone(t, f, "tone.flac", 440, 2)
	e.setPackager(packager.New(packager.Config{Timeout: time.Millisecond, Ladder: []int{64}, TempDir: t.TempDir()}))
	e.startJobs(t)
	v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status == store.StatusFailed })
	if v.Processing == nil || v.Processing.Attempts != 1 || !strings.Contains(v.Processing.Error, "too slow") {
		t.Errorf("job over its time limit: %+v", v.Processing)
	}
}

// TestTakedownCancelsJobLoggedAsCancelled: a package job cancelled by a
// takedown is logged as cancelled, not as a lost lease.
func TestTakedownCancelsJobLoggedAsCancelled(t *testing.T) {
	e := newIngestEnv(t, func(c *Config, _ *auth.Argon2Params) { c.JobLease = 300 * time.Millisecond; c.Workers = 1 })
	e.setPackager(packager.New(packager.Config{Ladder: []int{64, 128}, Concurrency: 1, TempDir: t.TempDir()}))
	e.startJobs(t)
	f := e.fixture()
	v := e.uploadTone(t, f, "long.flac", 440, 120)
	e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Processing != nil && v.Processing.Stage == "transcode" })
	wantStatus(t, e.do(request{method: "DELETE", path: "/songs/" + itoa(v.ID), token: f.owner.AccessToken}), http.StatusNoContent, "")
	waitFor(t, "the cancelled job's log line", func() bool { return strings.Contains(e.logs.String(), "job cancelled") })
	if strings.Contains(e.logs.String(), "lease lost") {
		t.Errorf("a takedown was logged as a lost lease:\n%s", e.logs)
	}
}

// TestUploadCaps: uploads in progress are capped per account and in all
// (429 with Retry-After) and so are the spool bytes they may take (503
// spool_full with Retry-After); a finished upload frees its place.
func TestUploadCaps(t *testing.T) {
	e := newIngestEnv(t, func(c *Config, _ *auth.Argon2Params) {
		c.UploadsPerUser, c.UploadsTotal, c.SpoolMaxBytes = 1, 2, 2<<20
	})
	f := e.fixture()
	second := e.register("second@example.com", "Second")
	r := e.do(request{method: "POST", path: "/artists", token: second.AccessToken, body: map[string]string{"name": "Second"}})
	wantStatus(t, r, http.StatusCreated, "")
	data, _ := os.ReadFile(synth(t, t.TempDir(), "tone.flac", 440, 1))
	album := [][2]string{{"album_id", itoa(f.album.ID)}}

	// An upload that stalls mid-body holds its place.
	body, ct := multipartBody(t, album, "tone.flac", data)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", e.url+"/songs", pr)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+f.owner.AccessToken)
	req.ContentLength = int64(len(body))
	stalled := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			stalled <- 0
			return
		}
		res.Body.Close()
		stalled <- res.StatusCode
	}()
	pw.Write(body[:len(body)/2])
	waitFor(t, "the stalled upload to be admitted", func() bool {
		e.srv.uploads.mu.Lock()
		defer e.srv.uploads.mu.Unlock()
		return e.srv.uploads.total == 1
	})

	r = e.upload("POST", "/songs", f.owner.AccessToken, album, "tone.flac", data)
	wantStatus(t, r, http.StatusTooManyRequests, "too_many_uploads")
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	// Another account still may; with it in progress too, everyone is
	// at the total cap. The spool cap counts the declared length.
	big := make([]byte, 3<<20)
	r = e.upload("POST", "/songs", second.AccessToken, nil, "big.flac", big)
	wantStatus(t, r, http.StatusServiceUnavailable, "spool_full")
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 spool_full without Retry-After")
	}
	pw.Write(body[len(body)/2:])
	pw.Close()
	if code := <-stalled; code != http.StatusAccepted {
		t.Fatalf("the stalled upload ended %d", code)
	}
	// Its place is free again.
	r = e.upload("POST", "/songs", f.owner.AccessToken, album, "again.flac", append(data[:len(data):len(data)], 0))
	if r.StatusCode == http.StatusTooManyRequests {
		t.Errorf("a finished upload did not free its place: %s", r.body)
	}
}

// TestUploadGate: the gate's arithmetic, per account and in total.
func TestUploadGate(t *testing.T) {
	g := newUploadGate(2, 3, 100)
	var leaves []func()
	for _, user := range []int64{1, 1, 2} {
		leave, err := g.enter(user, 10)
		if err != nil {
			t.Fatalf("enter(%d) = %v", user, err)
		}
		leaves = append(leaves, leave)
	}
	if _, err := g.enter(1, 10); err == nil {
		t.Error("a third upload of user 1 was admitted")
	}
	if _, err := g.enter(3, 10); err == nil {
		t.Error("a fourth upload in all was admitted")
	}
	leaves[0]()
	leaves[0]() // idempotent
	if _, err := g.enter(3, 81); err == nil {
		t.Error("an upload past the spool cap was admitted")
	}
	leave, err := g.enter(3, 80)
	if err != nil {
		t.Fatalf("enter after a leave = %v", err)
	}
	leave()
	for _, l := range leaves[1:] {
		l()
	}
	if g.total != 0 || g.spool != 0 || len(g.perUser) != 0 {
		t.Errorf("gate after every leave: %+v", g)
	}
}
