package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/obs"
	"riff/packager"
)

// fakeStore is a Store with a fixed list of jobs to hand out, recording
// how each ended. It is what the Store interface lets a test use instead
// of a database.
type fakeStore struct {
	mu      sync.Mutex
	jobs    []store.Job
	songs   map[int64]store.Song
	ended   map[int64]string // job id → how it ended
	retried map[int64]bool   // job id → permanent
}

func (f *fakeStore) ClaimJob(ctx context.Context, owner string, lease time.Duration) (store.Job, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.jobs) == 0 {
		return store.Job{}, false, nil
	}
	j := f.jobs[0]
	f.jobs = f.jobs[1:]
	j.Attempts++
	return j, true, nil
}
func (f *fakeStore) RenewLease(context.Context, int64, string, time.Duration) error { return nil }
func (f *fakeStore) SetJobProgress(context.Context, int64, string, string, int) error {
	return nil
}
func (f *fakeStore) RetryJob(_ context.Context, id int64, _, reason string, _ time.Duration, permanent bool) (bool, error) {
	f.end(id, "retry: "+reason)
	f.mu.Lock()
	f.retried[id] = permanent
	f.mu.Unlock()
	return permanent, nil
}
func (f *fakeStore) ReleaseJob(_ context.Context, id int64, _ string) error {
	f.end(id, "released")
	return nil
}
func (f *fakeStore) FinishJob(_ context.Context, id int64, _, stage string) error {
	f.end(id, "finished "+stage)
	return nil
}
func (f *fakeStore) UploadByID(_ context.Context, id int64) (store.Upload, error) {
	return store.Upload{}, fmt.Errorf("upload %d: %w", id, store.ErrNotFound)
}
func (f *fakeStore) SongByID(_ context.Context, id int64) (store.Song, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	so, ok := f.songs[id]
	if !ok {
		return so, store.ErrNotFound
	}
	return so, nil
}
func (f *fakeStore) PublishUpload(_ context.Context, id int64, _ string, _ store.Published, _ time.Time) (int, error) {
	f.end(id, "published")
	return 0, nil
}
func (f *fakeStore) CompleteGC(_ context.Context, id int64, _ string) error {
	f.end(id, "collected")
	return nil
}

func (f *fakeStore) end(id int64, how string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ended[id] = how
}

func (f *fakeStore) endings() map[int64]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[int64]string{}
	for k, v := range f.ended {
		m[k] = v
	}
	return m
}

// TestWorkerOnAFakeStore: gc deletes a superseded version's objects and
// keeps a current one, an unknown job kind and a missing upload fail at
// once (not retried), and every collection kicks the purge.
func TestWorkerOnAFakeStore(t *testing.T) {
	ctx := context.Background()
	bs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	so := store.Song{ID: 3, AlbumID: 2, AlbumArtistID: 1, Status: store.StatusReady, CurrentVersion: 2}
	for v := 1; v <= 2; v++ {
		if _, err := bs.Put(ctx, blobkey.VersionFolder(1, 2, 3, v)+"master.m3u8", strings.NewReader("#EXTM3U\n"), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	fs := &fakeStore{
		jobs: []store.Job{
			{ID: 1, Kind: store.JobGC, SongID: 3, Version: 1},
			{ID: 2, Kind: store.JobGC, SongID: 3, Version: 2},
			{ID: 3, Kind: "transmogrify", SongID: 3, Version: 3},
			{ID: 4, Kind: store.JobPackage, SongID: 3, UploadID: 9, Version: 3},
		},
		songs: map[int64]store.Song{3: so}, ended: map[int64]string{}, retried: map[int64]bool{},
	}
	var purges sync.WaitGroup
	purges.Add(1)
	var once sync.Once
	var reportMu sync.Mutex
	reports := map[string]obs.Failure{} // job id → what the error tracker got
	w, err := New(Config{Workers: 1, Poll: 10 * time.Millisecond}, Deps{
		Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet(), Store: fs, Blob: bs,
		Packager: packager.New(packager.Config{}), Purged: func() { once.Do(purges.Done) },
		Report: func(_ context.Context, f obs.Failure) {
			reportMu.Lock()
			defer reportMu.Unlock()
			reports[f.Tags["job_id"]] = f
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); w.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(fs.endings()) < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	purges.Wait()

	got := fs.endings()
	want := map[int64]string{1: "collected", 2: "finished kept"}
	for id, how := range want {
		if got[id] != how {
			t.Errorf("job %d ended %q, want %q", id, got[id], how)
		}
	}
	if !strings.Contains(got[3], "unknown job kind") || !fs.retried[3] {
		t.Errorf("unknown kind ended %q (permanent %v)", got[3], fs.retried[3])
	}
	if !strings.HasPrefix(got[4], "retry: ") || !fs.retried[4] {
		t.Errorf("a job whose upload is gone ended %q (permanent %v)", got[4], fs.retried[4])
	}
	// The two jobs that failed for good went to the error tracker, with
	// their song; the others did not.
	reportMu.Lock()
	if len(reports) != 2 || reports["3"].Tags["song_id"] != "3" || reports["4"].Err == nil || reports["4"].Route != "job package" {
		t.Errorf("error reports %+v, want jobs 3 and 4 with their song id", reports)
	}
	reportMu.Unlock()
	var keys []string
	for info, err := range bs.List(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, info.Key)
	}
	if len(keys) != 1 || !strings.Contains(keys[0], "/v2/") {
		t.Errorf("blob store holds %v, want only v2", keys)
	}
}

// TestNewNeedsDependencies: New refuses a missing part instead of failing
// later in a worker.
func TestNewNeedsDependencies(t *testing.T) {
	if _, err := New(Config{}, Deps{}); err == nil {
		t.Error("New with no dependencies succeeded")
	}
}

func TestReasonOf(t *testing.T) {
	cases := []struct {
		err  error
		want string
	}{
		{&packager.ProbeError{Kind: packager.ErrDuration, Reason: "too long"}, "the audio was refused: bad duration: too long"},
		{fmt.Errorf("x: %w", &packager.ProbeError{Kind: packager.ErrUndecodable}), "transcoding failed: ffmpeg could not encode the audio"},
		{permanentError{errors.New("upload it again")}, "upload it again"},
		{errors.New("disk full at /var/lib/riff"), "packaging failed on the server (storage or database error)"},
	}
	for _, tc := range cases {
		if got := reasonOf(tc.err); got != tc.want {
			t.Errorf("reasonOf(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// progressStore records the progress a job reports.
type progressStore struct {
	fakeStore
	mu       sync.Mutex
	percents []int
}

func (p *progressStore) SetJobProgress(_ context.Context, _ int64, _, _ string, percent int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.percents = append(p.percents, percent)
	return nil
}

// TestProgressMovesDuringTranscode: while the renditions encode, the
// job's percent moves with each rendition's progress (the mean of all of
// them), not only at stage changes.
func TestProgressMovesDuringTranscode(t *testing.T) {
	ps := &progressStore{}
	bs, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	w, err := New(Config{}, Deps{Logger: slog.New(slog.DiscardHandler), Metrics: metrics.NewSet(), Store: ps, Blob: bs,
		Packager: packager.New(packager.Config{Ladder: []int{64, 128}, Formats: []string{packager.FormatAAC, packager.FormatOgg}})})
	if err != nil {
		t.Fatal(err)
	}
	pw := &progressWriter{w: w, ctx: context.Background(), job: 1, owner: "w"}
	total := 4 * time.Minute
	pw.packager(packager.Progress{Stage: packager.StageProbe})
	for _, ev := range []struct {
		rendition string
		done      time.Duration
	}{{"aac_64", time.Minute}, {"aac_64", 3 * time.Minute}, {"aac_128", 2 * time.Minute}, {"ogg_64", 4 * time.Minute}} {
		pw.packager(packager.Progress{Stage: packager.StageTranscode, Rendition: ev.rendition, Done: ev.done, Total: total})
		time.Sleep(510 * time.Millisecond) // progress is written at most every half second
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	// probe 2, then 5 + 85 × the mean fraction of the 4 renditions:
	// 1/16, 3/16, 5/16, 9/16 encoded.
	want := []int{2, 10, 20, 31, 52}
	if !slices.Equal(ps.percents, want) {
		t.Errorf("percents %v, want %v", ps.percents, want)
	}
}
