package catalogd

import (
	"context"
	"net/http"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/obs"
	"riff/internal/testrun"
)

// TestUploadTraceReachesPublish: with tracing on, one trace covers an
// upload from POST /songs to publish: the job's span continues the upload
// request's trace (its traceparent is stored with the job), with the
// claim, fetch, package and publish stages under it and one encode span per
// rendition under package.
func TestUploadTraceReachesPublish(t *testing.T) {
	rcv := testrun.NewOTLPReceiver(t)
	e := newIngestEnv(t)
	stop, err := e.srv.obs.StartTracing(context.Background(), obs.Tracing{Endpoint: rcv.URL, Ratio: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := e.fixture()
	v := e.uploadTone(t, f, "tone.flac", 440, 2)
	e.startJobs(t)
	v = e.waitSong(t, v.ID, f.owner.AccessToken, func(v songView) bool { return v.Status != store.StatusProcessing })
	if v.Status != store.StatusReady {
		t.Fatalf("song ended %+v", v)
	}
	// The song is ready when publish commits; the job span ends after the
	// job is marked done. Let the job finish and the workers stop before
	// the tracer flushes, or the job span may be ended after it (CI saw
	// every span but that one).
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := e.store.LatestJob(context.Background(), v.ID, store.JobPackage)
		if err == nil && j.State == store.JobDone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the package job is not done 10s after the song was ready: %+v, %v", j, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.stopJobs()
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	byName := map[string][]testrun.Span{}
	byID := map[string]testrun.Span{}
	for _, s := range rcv.Spans() {
		byName[s.Name] = append(byName[s.Name], s)
		byID[s.SpanID] = s
	}
	if len(byName["POST /songs"]) != 1 || len(byName["job package"]) != 1 {
		t.Fatalf("spans by name %v, want one upload request and one package job", byName)
	}
	upload, job := byName["POST /songs"][0], byName["job package"][0]
	if job.TraceID != upload.TraceID || job.ParentID != upload.SpanID || job.Attrs["song_id"] == "" {
		t.Errorf("job span %+v, want a child of the upload request %s in trace %s", job, upload.SpanID, upload.TraceID)
	}
	if job.Attrs["queue.wait_ms"] == "" {
		t.Errorf("job span attributes %v, want queue.wait_ms", job.Attrs)
	}
	for _, stage := range []string{"claim", "fetch original", "package", "publish"} {
		if ss := byName[stage]; len(ss) != 1 || ss[0].ParentID != job.SpanID {
			t.Errorf("stage %q spans %+v, want one under the job", stage, ss)
		}
	}
	pkg := byName["package"][0]
	encodes := map[string]bool{}
	for name, ss := range byName {
		for _, s := range ss {
			if s.ParentID == pkg.SpanID && len(name) > len("encode ") && name[:len("encode ")] == "encode " {
				encodes[name] = true
			}
		}
	}
	// The test packager's ladder: AAC and Ogg at 64 and 128 kbps.
	for _, want := range []string{"encode aac_64", "encode aac_128", "encode ogg_64", "encode ogg_128"} {
		if !encodes[want] {
			t.Errorf("no %q span under package; encodes %v", want, encodes)
		}
	}
}

// TestRequestTraceHasStoreSpans: with tracing on, a request's store calls
// are spans under its server span, with the database attributes.
func TestRequestTraceHasStoreSpans(t *testing.T) {
	rcv := testrun.NewOTLPReceiver(t)
	e := newEnv(t)
	f := e.fixture()
	stop, err := e.srv.obs.StartTracing(context.Background(), obs.Tracing{Endpoint: rcv.URL, Ratio: 1})
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do(request{method: "POST", path: "/songs/" + itoa(f.ready.ID) + "/like", token: f.owner.AccessToken}), http.StatusNoContent, "")
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	var server testrun.Span
	for _, s := range rcv.Spans() {
		if s.Name == "POST /songs/{id}/like" {
			server = s
		}
	}
	if server.SpanID == "" {
		t.Fatalf("no server span in %+v", rcv.Spans())
	}
	got := map[string]bool{}
	for _, s := range rcv.Spans() {
		if s.ParentID == server.SpanID && s.Attrs["db.system.name"] == "sqlite" && s.Attrs["db.operation.name"] != "" {
			got[s.Name] = true
		}
	}
	for _, want := range []string{"store.SongByID", "store.LikeSong"} {
		if !got[want] {
			t.Errorf("no %s span under the request; store spans %v", want, got)
		}
	}
}
