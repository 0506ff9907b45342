package replicate

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"iter"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"riff/catalogd/outbox"
	"riff/catalogd/store"
	"riff/catalogd/store/storetest"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/obs"
	"riff/internal/testrun"
)

// eachDB runs fn on a fresh SQLite store and, with RIFF_TEST_POSTGRES, a
// fresh PostgreSQL schema.
func eachDB(t *testing.T, fn func(t *testing.T, st *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, openStore(t, "file:"+filepath.Join(t.TempDir(), "riff.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		fn(t, openStore(t, storetest.PostgresDSN(t)))
	})
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// flaky is a blob.Store that fails every call while down is set: a
// region's store that is unreachable.
type flaky struct {
	blob.Store
	down atomic.Bool
}

var errDown = errors.New("store unreachable (test)")

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, o blob.PutOptions) (blob.Info, error) {
	if f.down.Load() {
		return blob.Info{}, errDown
	}
	return f.Store.Put(ctx, key, r, o)
}

func (f *flaky) Get(ctx context.Context, key string, rng *blob.Range) (io.ReadCloser, blob.Info, error) {
	if f.down.Load() {
		return nil, blob.Info{}, errDown
	}
	return f.Store.Get(ctx, key, rng)
}

func (f *flaky) Stat(ctx context.Context, key string) (blob.Info, error) {
	if f.down.Load() {
		return blob.Info{}, errDown
	}
	return f.Store.Stat(ctx, key)
}

func (f *flaky) Delete(ctx context.Context, key string) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Delete(ctx, key)
}

func (f *flaky) List(ctx context.Context, prefix string) iter.Seq2[blob.Info, error] {
	if f.down.Load() {
		return func(yield func(blob.Info, error) bool) { yield(blob.Info{}, errDown) }
	}
	return f.Store.List(ctx, prefix)
}

func newFS(t *testing.T) *blob.FS {
	t.Helper()
	s, err := blob.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture: a catalog with one song, a home store and two target regions.
type fixture struct {
	t        *testing.T
	st       *store.Store
	obs      *obs.Obs
	home     *blob.FS
	na, apac *flaky
	d        *Dispatcher
	song     store.Song
	artist   int64
}

func start(t *testing.T, st *store.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	f := &fixture{t: t, st: st, home: newFS(t), na: &flaky{Store: newFS(t)}, apac: &flaky{Store: newFS(t)}}
	f.obs = obs.New("catalogd", slog.New(slog.NewJSONHandler(&testrun.LockedBuffer{}, nil)))
	u, err := st.CreateUser(ctx, store.NewUser{Email: "a@example.com", PasswordHash: "h", DisplayName: "A"})
	if err != nil {
		t.Fatal(err)
	}
	ar, err := st.CreateArtist(ctx, u.ID, store.NewArtist{Name: "Artist"})
	if err != nil {
		t.Fatal(err)
	}
	al, err := st.CreateAlbum(ctx, store.NewAlbum{ArtistID: ar.ID, Title: "Album", Type: store.AlbumTypeAlbum})
	if err != nil {
		t.Fatal(err)
	}
	f.artist = ar.ID
	f.song, err = st.CreateSong(ctx, store.NewSong{AlbumID: al.ID, Title: "Song", Genre: "rock"})
	if err != nil {
		t.Fatal(err)
	}
	f.d, err = New(f.obs, st, Config{
		Source: f.home, Targets: []Target{{"na", f.na}, {"apac", f.apac}},
		Schedule: outbox.Schedule{
			PollInterval: 20 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			PruneInterval: 50 * time.Millisecond, Retain: time.Hour,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.d.Run(context.Background()) }()
	t.Cleanup(func() {
		f.d.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return f
}

// publish writes version v's objects to the home store and publishes it:
// what a packager and ingest.Worker do. It returns the objects' bodies.
func (f *fixture) publish(v int) map[string][]byte {
	f.t.Helper()
	ctx := context.Background()
	prefix := blobkey.VersionFolder(f.artist, f.song.AlbumID, f.song.ID, v)
	objs := map[string][]byte{}
	var rs []store.Rendition
	for i, name := range []string{"master.m3u8", "aac_64.mp4", "ogg_128.ogg"} {
		body := make([]byte, 1000+i*300_000) // up to ~600 KB, random
		rand.Read(body)
		objs[prefix+name] = body
		if _, err := f.home.Put(ctx, prefix+name, bytes.NewReader(body), blob.PutOptions{}); err != nil {
			f.t.Fatal(err)
		}
		if name != "master.m3u8" {
			fmt, kbps, _ := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(name, ".mp4"), ".ogg"), "_")
			n, _ := strconv.Atoi(kbps)
			rs = append(rs, store.Rendition{Format: fmt, BitrateKbps: n, BlobKey: prefix + name, SizeBytes: int64(len(body))})
		}
	}
	if err := f.st.PublishVersion(ctx, f.song.ID, v, rs); err != nil {
		f.t.Fatal(err)
	}
	f.d.Kick()
	return objs
}

func (f *fixture) regions(v int) []string {
	f.t.Helper()
	rs, err := f.st.VersionRegions(context.Background(), f.song.ID, v)
	if err != nil {
		f.t.Fatal(err)
	}
	return rs
}

// value returns metric name's value (-1: missing).
func (f *fixture) value(name string) float64 {
	var b bytes.Buffer
	f.obs.Metrics.WritePrometheus(&b)
	for line := range strings.SplitSeq(b.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

func waitFor(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantObjects checks that s holds exactly objs, byte for byte.
func wantObjects(t *testing.T, s blob.Store, prefix string, objs map[string][]byte, where string) {
	t.Helper()
	n := 0
	for info, err := range s.List(context.Background(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		want, ok := objs[info.Key]
		if !ok {
			t.Errorf("%s: unexpected object %s", where, info.Key)
			continue
		}
		rc, _, err := s.Get(context.Background(), info.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s differs from the home store's (%d bytes, want %d)", where, info.Key, len(got), len(want))
		}
	}
	if n != len(objs) {
		t.Errorf("%s: %d objects under %s, want %d", where, n, prefix, len(objs))
	}
}

func TestReplicatesCopiesAndDeletes(t *testing.T) {
	eachDB(t, func(t *testing.T, st *store.Store) {
		f := start(t, st)
		objs := f.publish(1)
		prefix := blobkey.VersionFolder(f.artist, f.song.AlbumID, f.song.ID, 1)
		waitFor(t, 20*time.Second, func() bool { return len(f.regions(1)) == 2 }, "v1 to reach both regions")
		if got := f.regions(1); !slices.Equal(got, []string{"apac", "na"}) {
			t.Errorf("regions of v1 = %v", got)
		}
		wantObjects(t, f.na, prefix, objs, "na")
		wantObjects(t, f.apac, prefix, objs, "apac")
		if got := f.value(`riff_replication_objects_total{region="na"}`); got != 3 {
			t.Errorf("objects copied to na = %v, want 3", got)
		}
		var total int
		for _, b := range objs {
			total += len(b)
		}
		if got := f.value(`riff_replication_bytes_total{region="na"}`); got != float64(total) {
			t.Errorf("bytes copied to na = %v, want %d", got, total)
		}
		waitFor(t, 10*time.Second, func() bool { return f.value(`riff_replication_outbox_pending`) == 0 }, "the backlog gauge to reach 0")

		// Sending the same copy again writes nothing: the objects are
		// there and verified.
		if err := st.EnqueueReplication(context.Background(), store.ReplicateCopy, f.song.ID, 1); err != nil {
			t.Fatal(err)
		}
		f.d.Kick()
		waitFor(t, 10*time.Second, func() bool { return f.value(`riff_replication_applied_total{region="na",op="copy"}`) == 2 }, "the second copy")
		if got := f.value(`riff_replication_objects_total{region="na"}`); got != 3 {
			t.Errorf("objects copied to na after a repeated copy = %v, want still 3", got)
		}

		// A collected version goes from every region.
		if err := st.EnqueueReplication(context.Background(), store.ReplicateDelete, f.song.ID, 1); err != nil {
			t.Fatal(err)
		}
		f.d.Kick()
		waitFor(t, 10*time.Second, func() bool { return len(f.regions(1)) == 0 }, "v1 to be unmarked everywhere")
		wantObjects(t, f.na, prefix, nil, "na after delete")
		wantObjects(t, f.apac, prefix, nil, "apac after delete")
	})
}

// TestRegionDownCatchesUp: a region whose store is unreachable holds its
// rows (backlog and lag grow, failures are counted) while the others go
// on, and catches up, byte-exact, when its store is back.
func TestRegionDownCatchesUp(t *testing.T) {
	eachDB(t, func(t *testing.T, st *store.Store) {
		f := start(t, st)
		f.apac.down.Store(true)
		objs := f.publish(1)
		prefix := blobkey.VersionFolder(f.artist, f.song.AlbumID, f.song.ID, 1)
		waitFor(t, 20*time.Second, func() bool { return slices.Equal(f.regions(1), []string{"na"}) }, "v1 to reach na")
		waitFor(t, 10*time.Second, func() bool {
			return f.value(`riff_replication_failures_total{region="apac",kind="target"}`) >= 2
		}, "failed attempts on apac to be counted")
		if got := f.value(`riff_replication_pending{region="apac"}`); got != 1 {
			t.Errorf("apac pending = %v, want 1", got)
		}
		// na's row is marked delivered before its cursor moves past it.
		waitFor(t, 10*time.Second, func() bool { return f.value(`riff_replication_pending{region="na"}`) == 0 }, "na's backlog to reach 0")
		waitFor(t, 10*time.Second, func() bool { return f.value(`riff_replication_lag_seconds{region="apac"}`) > 0 }, "apac's lag to grow")
		if f.d.Ready(context.Background()) != nil {
			t.Error("Ready fails below the lag threshold (10m)")
		}
		objs2 := f.publish(2) // queued behind v1
		if got := f.value(`riff_replication_pending{region="apac"}`); got < 1 {
			t.Errorf("apac pending = %v", got)
		}
		f.apac.down.Store(false)
		waitFor(t, 30*time.Second, func() bool { return len(f.regions(2)) == 2 && len(f.regions(1)) == 2 }, "apac to catch up")
		wantObjects(t, f.apac, prefix, objs, "apac v1")
		wantObjects(t, f.apac, blobkey.VersionFolder(f.artist, f.song.AlbumID, f.song.ID, 2), objs2, "apac v2")
		waitFor(t, 10*time.Second, func() bool {
			return f.value(`riff_replication_pending{region="apac"}`) == 0 && f.value(`riff_replication_lag_seconds{region="apac"}`) == 0
		}, "apac's backlog and lag gauges to return to 0")
		// Every region applied the rows: pruning may take them (after
		// the retention window, which this test does not wait for).
		if n, _, err := st.ReplicationBacklog(context.Background(), 0); err != nil || n != 2 {
			t.Errorf("outbox rows = %d, %v; want 2 kept for the retention window", n, err)
		}
	})
}

// corrupting returns bodies one byte shorter: a store that loses data.
type corrupting struct{ blob.Store }

func (c corrupting) Put(ctx context.Context, key string, r io.Reader, o blob.PutOptions) (blob.Info, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return blob.Info{}, err
	}
	return c.Store.Put(ctx, key, bytes.NewReader(b[:len(b)-1]), o)
}

func TestCopyObjectVerifies(t *testing.T) {
	ctx := context.Background()
	src, dst := newFS(t), newFS(t)
	body := bytes.Repeat([]byte("riff"), 10000)
	info, err := src.Put(ctx, "artists/1/albums/2/songs/3/v1/ogg_64.ogg", bytes.NewReader(body), blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CopyObject(ctx, src, corrupting{dst}, info); !errors.Is(err, errVerify) {
		t.Fatalf("CopyObject into a store that loses a byte = %v, want errVerify", err)
	}
	// The bad copy is replaced by a good one (same key, different size).
	if n, err := CopyObject(ctx, src, dst, info); err != nil || n != int64(len(body)) {
		t.Fatalf("CopyObject = %d, %v", n, err)
	}
	if n, err := CopyObject(ctx, src, dst, info); err != nil || n != 0 {
		t.Fatalf("CopyObject of an object already there = %d, %v; want 0, nil", n, err)
	}
	// Same size, different bytes: copied again.
	bad := bytes.Repeat([]byte("RIFF"), 10000)
	if _, err := dst.Put(ctx, info.Key, bytes.NewReader(bad), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if n, err := CopyObject(ctx, src, dst, info); err != nil || n != int64(len(body)) {
		t.Fatalf("CopyObject over a same-size different object = %d, %v", n, err)
	}
	down := &flaky{Store: src}
	down.down.Store(true)
	if _, err := CopyObject(ctx, down, dst, info); !errors.Is(err, errSource) {
		t.Errorf("CopyObject from an unreachable source = %v, want errSource", err)
	}
}
