package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"riff/internal/blobkey"
)

// ingestFixture is an artist with an album, ready for uploads.
func ingestFixture(t *testing.T, s *Store) (Artist, Album) {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, NewUser{Email: "a@example.com", PasswordHash: "x", DisplayName: "A"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.CreateArtist(ctx, u.ID, NewArtist{Name: "Tones"})
	if err != nil {
		t.Fatal(err)
	}
	al, err := s.CreateAlbum(ctx, NewAlbum{ArtistID: a.ID, Title: "Sines", Type: AlbumTypeAlbum})
	if err != nil {
		t.Fatal(err)
	}
	return a, al
}

func testUpload(artist int64, sha string) NewUpload {
	return NewUpload{ArtistID: artist, SHA256: sha, Ext: "flac", SizeBytes: 100, Container: "flac", Codec: "flac",
		DurationMS: 3000, Bitrate: 700000, Title: "Tone " + sha, Genre: "ambient", TrackNumber: 1, MaxAttempts: 2}
}

func TestUploadCreatesSongAndJobTogether(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		nu := testUpload(a.ID, "aa")
		nu.Hold = time.Minute
		so, up, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Tone"}, nu)
		if err != nil {
			t.Fatal(err)
		}
		if so.Status != StatusProcessing || so.CurrentVersion != 0 || up.Version != 1 || up.SongID != so.ID {
			t.Fatalf("song %+v upload %+v", so, up)
		}
		if want := fmt.Sprintf("originals/%d/%d.flac", so.ID, up.ID); up.BlobKey != want {
			t.Errorf("blob key %q, want %q", up.BlobKey, want)
		}
		// Held until the original is stored.
		if _, ok, err := s.ClaimJob(ctx, "w1", time.Minute); err != nil || ok {
			t.Fatalf("claim of a held job = %v, %v; want none", ok, err)
		}
		if err := s.ReleaseUpload(ctx, up.ID); err != nil {
			t.Fatal(err)
		}
		j, ok, err := s.ClaimJob(ctx, "w1", time.Minute)
		if err != nil || !ok || j.Kind != JobPackage || j.UploadID != up.ID || j.Attempts != 1 || j.State != JobRunning {
			t.Fatalf("claim = %+v, %v, %v", j, ok, err)
		}

		// The same bytes again: a duplicate of that song.
		_, _, err = s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Again"}, testUpload(a.ID, "aa"))
		var dup *DuplicateUploadError
		if !errors.As(err, &dup) || dup.SongID != so.ID || !errors.Is(err, ErrConflict) {
			t.Fatalf("duplicate upload: %v", err)
		}

		// Discarding the upload of a new song removes all of it.
		so2, up2, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Gone"}, testUpload(a.ID, "bb"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DiscardUpload(ctx, up2); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SongByID(ctx, so2.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("song of a discarded upload: %v, want not found", err)
		}
		if js, _ := s.Jobs(ctx, so2.ID); len(js) != 0 {
			t.Errorf("jobs of a discarded upload: %+v", js)
		}
	})
}

func TestJobLeaseRetryAndFailure(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		so, _, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Tone"}, testUpload(a.ID, "aa"))
		if err != nil {
			t.Fatal(err)
		}
		j, ok, err := s.ClaimJob(ctx, "w1", 30*time.Second)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		if _, ok, _ := s.ClaimJob(ctx, "w2", 30*time.Second); ok {
			t.Fatal("a leased job was claimed twice")
		}
		if err := s.SetJobProgress(ctx, j.ID, "w1", "transcode", 40); err != nil {
			t.Fatal(err)
		}
		if lj, err := s.LatestJob(ctx, so.ID, JobPackage); err != nil || lj.Stage != "transcode" || lj.Percent != 40 {
			t.Fatalf("progress: %+v, %v", lj, err)
		}
		clock.Advance(20 * time.Second)
		if err := s.RenewLease(ctx, j.ID, "w1", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		clock.Advance(20 * time.Second) // within the renewed lease
		if _, ok, _ := s.ClaimJob(ctx, "w2", 30*time.Second); ok {
			t.Fatal("a renewed lease was taken over")
		}
		// w1 dies: its lease runs out and w2 claims the job again.
		clock.Advance(11 * time.Second)
		j2, ok, err := s.ClaimJob(ctx, "w2", 30*time.Second)
		if err != nil || !ok || j2.ID != j.ID || j2.Attempts != 2 || j2.LeaseOwner != "w2" {
			t.Fatalf("reclaim = %+v, %v, %v", j2, ok, err)
		}
		if err := s.RenewLease(ctx, j.ID, "w1", time.Minute); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("renewal by the old owner = %v, want ErrLeaseLost", err)
		}
		if _, err := s.PublishUpload(ctx, j.ID, "w1", Published{}, clock.Now()); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("publish by the old owner = %v, want ErrLeaseLost", err)
		}
		// Shutting down hands the job back without counting the attempt.
		if err := s.ReleaseJob(ctx, j.ID, "w2"); err != nil {
			t.Fatal(err)
		}
		j3, ok, err := s.ClaimJob(ctx, "w3", 30*time.Second)
		if err != nil || !ok || j3.Attempts != 2 {
			t.Fatalf("claim after release = %+v, %v, %v", j3, ok, err)
		}
		// The last attempt (2 of 2) fails: the job and the song fail.
		failed, err := s.RetryJob(ctx, j.ID, "w3", "transcoding failed: boom", time.Second, false)
		if err != nil || !failed {
			t.Fatalf("RetryJob = %v, %v; want failed", failed, err)
		}
		got, _ := s.SongByID(ctx, so.ID)
		lj, _ := s.LatestJob(ctx, so.ID, JobPackage)
		if got.Status != StatusFailed || lj.State != JobFailed || lj.LastError != "transcoding failed: boom" {
			t.Errorf("after the last attempt: song %s, job %+v", got.Status, lj)
		}
	})
}

func TestJobBackoffAndDeadWorkerLimit(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		nu := testUpload(a.ID, "aa")
		nu.MaxAttempts = 2
		so, _, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Tone"}, nu)
		if err != nil {
			t.Fatal(err)
		}
		j, _, _ := s.ClaimJob(ctx, "w1", 10*time.Second)
		if failed, err := s.RetryJob(ctx, j.ID, "w1", "flaky", 5*time.Second, false); err != nil || failed {
			t.Fatalf("RetryJob = %v, %v", failed, err)
		}
		if _, ok, _ := s.ClaimJob(ctx, "w2", 10*time.Second); ok {
			t.Fatal("claimed during backoff")
		}
		clock.Advance(5 * time.Second)
		j, ok, _ := s.ClaimJob(ctx, "w2", 10*time.Second)
		if !ok || j.Attempts != 2 || j.LastError != "flaky" {
			t.Fatalf("claim after backoff = %+v, %v", j, ok)
		}
		// The worker of the last attempt dies: the job fails when found.
		clock.Advance(11 * time.Second)
		if _, ok, err := s.ClaimJob(ctx, "w3", 10*time.Second); ok || err != nil {
			t.Fatalf("claim of an exhausted job = %v, %v", ok, err)
		}
		got, _ := s.SongByID(ctx, so.ID)
		lj, _ := s.LatestJob(ctx, so.ID, JobPackage)
		if got.Status != StatusFailed || lj.State != JobFailed || lj.LastError == "" {
			t.Errorf("song %s job %+v", got.Status, lj)
		}
	})
}

func TestPublishReplaceAndTakeDown(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		nu := testUpload(a.ID, "aa")
		nu.Title = "Tagged Title"
		so, _, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Tagged Title"}, nu)
		if err != nil {
			t.Fatal(err)
		}
		rs := func(v int) []Rendition {
			return []Rendition{{Format: "aac", BitrateKbps: 64, BlobKey: blobkey.VersionFolder(a.ID, al.ID, so.ID, v) + "aac_64.mp4", SizeBytes: 10},
				{Format: "ogg", BitrateKbps: 64, BlobKey: blobkey.VersionFolder(a.ID, al.ID, so.ID, v) + "ogg_64.ogg", SizeBytes: 9}}
		}
		j, _, _ := s.ClaimJob(ctx, "w", time.Minute)
		old, err := s.PublishUpload(ctx, j.ID, "w", Published{Renditions: rs(1), DurationMS: 2990}, clock.Now().Add(time.Hour))
		if err != nil || old != 0 {
			t.Fatalf("publish v1 = %d, %v", old, err)
		}
		got, _ := s.SongByID(ctx, so.ID)
		if got.Status != StatusReady || got.CurrentVersion != 1 || got.DurationMS != 2990 || got.Title != "Tagged Title" || got.Genre != "ambient" {
			t.Fatalf("published song %+v", got)
		}
		// Publishing the finished job again changes nothing.
		if _, err := s.PublishUpload(ctx, j.ID, "w", Published{Renditions: rs(1)}, clock.Now()); !errors.Is(err, ErrLeaseLost) {
			t.Errorf("second publish = %v, want ErrLeaseLost", err)
		}
		if r, _ := s.Renditions(ctx, so.ID, 1); len(r) != 2 {
			t.Errorf("renditions of v1: %+v", r)
		}

		// A replacement publishes v2 and queues v1's collection.
		nu2 := testUpload(a.ID, "bb")
		nu2.Title = "New Title"
		up2, err := s.CreateReplacement(ctx, so.ID, nu2)
		if err != nil || up2.Version != 2 {
			t.Fatalf("replacement = %+v, %v", up2, err)
		}
		got, _ = s.SongByID(ctx, so.ID)
		if got.CurrentVersion != 1 || got.Status != StatusReady {
			t.Fatalf("v1 must keep playing until the switch: %+v", got)
		}
		j2, ok, _ := s.ClaimJob(ctx, "w", time.Minute)
		if !ok || j2.Version != 2 {
			t.Fatalf("claim v2 = %+v", j2)
		}
		gcAt := clock.Now().Add(time.Hour)
		if old, err := s.PublishUpload(ctx, j2.ID, "w", Published{Renditions: rs(2), DurationMS: 4000}, gcAt); err != nil || old != 1 {
			t.Fatalf("publish v2 = %d, %v", old, err)
		}
		got, _ = s.SongByID(ctx, so.ID)
		if got.CurrentVersion != 2 || got.Title != "New Title" || got.DurationMS != 4000 {
			t.Fatalf("after v2: %+v", got)
		}
		wantPurges := func(want ...string) {
			t.Helper()
			es, err := s.PendingPurges(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range es {
				got = append(got, e.Prefix)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("purge outbox %v, want %v", got, want)
			}
		}
		v1 := blobkey.SongFolder(a.ID, al.ID, so.ID) // edges purge song folders
		wantPurges(v1)                               // in the switch's transaction
		if _, ok, _ := s.ClaimJob(ctx, "w", time.Minute); ok {
			t.Fatal("GC claimed before its time")
		}
		clock.Advance(time.Hour)
		g, ok, _ := s.ClaimJob(ctx, "w", time.Minute)
		if !ok || g.Kind != JobGC || g.Version != 1 {
			t.Fatalf("GC job = %+v, %v", g, ok)
		}
		if err := s.CompleteGC(ctx, g.ID, "w"); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Renditions(ctx, so.ID, 1); len(r) != 0 {
			t.Errorf("v1 renditions after GC: %+v", r)
		}
		wantPurges(v1, v1) // again once the objects are gone
		if r, _ := s.Renditions(ctx, so.ID, 2); len(r) != 2 {
			t.Errorf("v2 renditions after GC: %+v", r)
		}

		// A replacement in flight when the song is taken down is cancelled
		// and collected with the current version.
		if _, err := s.CreateReplacement(ctx, so.ID, testUpload(a.ID, "cc")); err != nil {
			t.Fatal(err)
		}
		if err := s.TakeDown(ctx, so.ID, clock.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _ = s.SongByID(ctx, so.ID)
		if got.Status != StatusTakenDown {
			t.Fatalf("status after takedown: %s", got.Status)
		}
		wantPurges(v1, v1, v1)
		js, _ := s.Jobs(ctx, so.ID)
		var gcs []int
		for _, j := range js {
			if j.Kind == JobPackage && j.Version == 3 && j.State != JobFailed {
				t.Errorf("package job of v3 not cancelled: %+v", j)
			}
			if j.Kind == JobGC && j.State == JobQueued {
				gcs = append(gcs, j.Version)
			}
		}
		if len(gcs) != 2 {
			t.Errorf("queued GC of versions %v, want v3 and v2", gcs)
		}
		if _, err := s.CreateReplacement(ctx, so.ID, testUpload(a.ID, "dd")); !errors.Is(err, ErrConflict) {
			t.Errorf("replacing a taken-down song = %v, want ErrConflict", err)
		}
	})
}

// TestConcurrentDuplicateUploads: the same bytes uploaded many times at
// once make one song.
func TestConcurrentDuplicateUploads(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		var wg sync.WaitGroup
		var mu sync.Mutex
		made, dups := 0, 0
		for range 8 {
			wg.Go(func() {
				_, _, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Same"}, testUpload(a.ID, "same"))
				mu.Lock()
				defer mu.Unlock()
				var dup *DuplicateUploadError
				switch {
				case err == nil:
					made++
				case errors.As(err, &dup):
					dups++
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if made != 1 || dups != 7 {
			t.Errorf("%d songs made, %d duplicates; want 1 and 7", made, dups)
		}
	})
}

// TestConcurrentClaims: many workers claiming at once each get a job of
// their own (SKIP LOCKED on PostgreSQL, the single writer on SQLite).
func TestConcurrentClaims(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		const n = 12
		for i := range n {
			if _, _, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "T"}, testUpload(a.ID, fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		var mu sync.Mutex
		seen := map[int64]string{}
		var wg sync.WaitGroup
		for w := range 6 {
			wg.Go(func() {
				owner := fmt.Sprint("w", w)
				for {
					j, ok, err := s.ClaimJob(ctx, owner, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						return
					}
					mu.Lock()
					if prev, dup := seen[j.ID]; dup {
						t.Errorf("job %d claimed by %s and %s", j.ID, prev, owner)
					}
					seen[j.ID] = owner
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != n {
			t.Errorf("%d jobs claimed, want %d", len(seen), n)
		}
	})
}

// TestJobBacklog: the backlog counts due, unclaimed jobs and ages the
// oldest; held and claimed jobs are not in it.
func TestJobBacklog(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		if b, err := s.Backlog(ctx); err != nil || b != (JobBacklog{}) {
			t.Fatalf("empty queue backlog = %+v, %v", b, err)
		}
		held := testUpload(a.ID, "h1")
		held.Hold = time.Hour
		if _, _, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: "Held"}, held); err != nil {
			t.Fatal(err)
		}
		for _, sha := range []string{"d1", "d2"} {
			if _, _, err := s.CreateSongUpload(ctx, NewSong{AlbumID: al.ID, Title: sha}, testUpload(a.ID, sha)); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Minute)
		}
		b, err := s.Backlog(ctx)
		if err != nil || b.Due != 2 || b.OldestDue != 2*time.Minute {
			t.Fatalf("backlog = %+v, %v; want 2 due, the oldest 2m old", b, err)
		}
		if _, ok, err := s.ClaimJob(ctx, "w1", time.Minute); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if b, err = s.Backlog(ctx); err != nil || b.Due != 1 || b.OldestDue != time.Minute {
			t.Fatalf("backlog after a claim = %+v, %v; want 1 due, 1m old", b, err)
		}
	})
}
