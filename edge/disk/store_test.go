package disk

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func randBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(n)}).Read(b)
	return b
}

func testMeta(size int64) Meta {
	return Meta{Size: size, ETag: `"v1"`, ContentType: "audio/mp4", LastModified: "Sat, 05 Dec 2026 10:00:00 GMT"}
}

func open(t *testing.T, dir string, maxBytes int64) *Store {
	t.Helper()
	s, err := Open(Config{Dir: dir, MaxBytes: maxBytes, SliceBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func zeroGen(string) uint64 { return 0 }

const key = "artists/1/albums/2/songs/3/v1/aac_128.mp4"

// TestPutReadAcrossRestart: slices written by one store are read back,
// byte for byte, by the next one over the same folder.
func TestPutReadAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 64<<20)
	if _, err := s.Load(zeroGen); err != nil {
		t.Fatal(err)
	}
	data := [][]byte{randBytes(1, 1000), randBytes(2, 1000), randBytes(3, 500)}
	for i, d := range data {
		s.Put(key, 0, int64(i), testMeta(2500), d)
	}
	s.Flush()
	if st := s.Stats(); st.Writes != 3 || st.Files != 3 {
		t.Fatalf("after 3 puts: %+v", st)
	}
	s.Close()

	s2 := open(t, dir, 64<<20)
	ls, err := s2.Load(zeroGen)
	if err != nil || ls.Files != 3 || ls.Discarded != 0 {
		t.Fatalf("Load = %+v, %v; want 3 files, none discarded", ls, err)
	}
	for i, want := range data {
		got, meta, ok := s2.Read(key, 0, int64(i))
		if !ok || !bytes.Equal(got, want) || meta != testMeta(2500) {
			t.Fatalf("Read(%d) = %d bytes, %+v, %v", i, len(got), meta, ok)
		}
	}
	if _, _, ok := s2.Read(key, 1, 0); ok {
		t.Fatal("a slice was found under another generation")
	}
}

// TestDamagedFilesAreNeverServed: a torn file is dropped at Load; a flipped
// data byte is caught by Read; a file renamed to another slice's name is
// dropped; all are deleted.
func TestDamagedFilesAreNeverServed(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 64<<20)
	s.Load(zeroGen)
	for i := range 4 {
		s.Put(key, 0, int64(i), testMeta(4000), randBytes(uint64(i), 1000))
	}
	s.Flush()
	s.Close()
	// 0: torn (cut in the data); 1: a data byte flipped; 2: renamed to the
	// name of slice 5 (a foreign file); 3: intact.
	p := func(i int64) string { return s.path(SliceID(key, 0, i)) }
	if err := os.Truncate(p(0), HeaderBytes+100); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p(1))
	b[HeaderBytes+10] ^= 1
	os.WriteFile(p(1), b, 0o644)
	os.Rename(p(2), p(5))

	s2 := open(t, dir, 64<<20)
	s2.Load(zeroGen)
	s2.WaitScrub()
	if st := s2.Stats(); st.Files != 2 || st.ScrubbedBad != 2 {
		t.Fatalf("after the scrub: %+v, want 2 files kept (1 and 3), 2 deleted", st)
	}
	if _, _, ok := s2.Read(key, 0, 1); ok {
		t.Fatal("a slice with a flipped data byte was read")
	}
	if _, err := os.Stat(p(1)); !os.IsNotExist(err) {
		t.Fatalf("the corrupt file is still there: %v", err)
	}
	for _, i := range []int64{0, 2, 5} {
		if _, _, ok := s2.Read(key, 0, i); ok {
			t.Fatalf("slice %d read", i)
		}
	}
	if got, _, ok := s2.Read(key, 0, 3); !ok || !bytes.Equal(got, randBytes(3, 1000)) {
		t.Fatal("the intact slice is not read back")
	}
	if st := s2.Stats(); st.Corrupt != 1 || st.Files != 1 {
		t.Fatalf("stats %+v, want 1 corrupt, 1 file left", st)
	}
}

// TestPurgesSurviveRestart: recorded purges come back from the log, and
// Load deletes the slices they made stale.
func TestPurgesSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 64<<20)
	s.Load(zeroGen)
	s.Put(key, 0, 0, testMeta(100), randBytes(1, 100))
	other := "artists/2/albums/1/songs/1/v1/aac_64.mp4"
	s.Put(other, 0, 0, testMeta(100), randBytes(2, 100))
	s.Flush()
	if err := s.RecordPurges([]Purge{{"artists/1/", 4}, {"artists/9/albums/1/", 6}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordPurges([]Purge{{"", 3}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s2 := open(t, dir, 64<<20)
	p := s2.Purges()
	if p.Seq != 6 || p.Floor != 3 || p.Prefixes["artists/1/"] != 4 || p.Prefixes["artists/9/albums/1/"] != 6 {
		t.Fatalf("Purges() = %+v", p)
	}
	gen := func(k string) uint64 {
		if k == key {
			return 4
		}
		return 3
	}
	s2.Load(gen)
	if _, _, ok := s2.Read(key, 4, 0); ok {
		t.Fatal("a purged slice was found under the new generation")
	}
	s2.WaitScrub()
	if st := s2.Stats(); st.Files != 0 || st.ScrubbedBad != 2 {
		t.Fatalf("after the scrub: %+v, want both slices deleted (generation 0 is purged)", st)
	}
	s2.Close()
	s3 := open(t, dir, 64<<20) // the compacted log reads the same
	if p3 := s3.Purges(); p3.Seq != 6 || p3.Floor != 3 || len(p3.Prefixes) != 2 {
		t.Fatalf("after compaction: %+v", p3)
	}
}

// TestNoPurgeLogNoSlices: slice files without a purge log are deleted (no
// one can say which were purged), and so are they after a failed purge
// write made the store delete its log.
func TestNoPurgeLogNoSlices(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 64<<20)
	s.Load(zeroGen)
	s.Put(key, 0, 0, testMeta(100), randBytes(1, 100))
	s.Flush()
	s.Close()
	os.Remove(filepath.Join(dir, "generations"))
	s2 := open(t, dir, 64<<20)
	if ls, _ := s2.Load(zeroGen); ls.Files != 0 || ls.Discarded != 1 {
		t.Fatalf("Load without a purge log = %+v, want the file discarded", ls)
	}
	s2.Put(key, 0, 0, testMeta(100), randBytes(1, 100))
	s2.Flush()
	// The purge log breaks: the store stops serving and removes the log.
	s2.genMu.Lock()
	s2.genLog.Close() // writes now fail
	s2.genMu.Unlock()
	if err := s2.RecordPurges([]Purge{{"artists/1/", 1}}); err != nil {
		t.Fatalf("RecordPurges = %v; the log could be removed, so the purge is safe", err)
	}
	if _, _, ok := s2.Read(key, 0, 0); ok {
		t.Fatal("a broken store served a slice")
	}
	if !s2.Stats().Degraded {
		t.Fatal("a broken store does not report itself degraded")
	}
	s2.Close()
	s3 := open(t, dir, 64<<20)
	if ls, _ := s3.Load(zeroGen); ls.Files != 0 {
		t.Fatalf("after a failed purge write: %+v, want no files kept", ls)
	}
}

// TestBudgetEvictsLeastRecentlyUsed: over budget the least recently read
// or written file goes, and its file is deleted.
func TestBudgetEvictsLeastRecentlyUsed(t *testing.T) {
	dir := t.TempDir()
	const n = 1000
	s := open(t, dir, 3*(HeaderBytes+n))
	s.Load(zeroGen)
	for i := range 3 {
		s.Put(key, 0, int64(i), testMeta(10*n), randBytes(uint64(i), n))
		s.Flush()
	}
	if _, _, ok := s.Read(key, 0, 0); !ok { // 0 is now the most recent
		t.Fatal("slice 0 missing")
	}
	s.Put(key, 0, 3, testMeta(10*n), randBytes(3, n))
	s.Flush()
	if s.Has(key, 0, 1) || !s.Has(key, 0, 0) || !s.Has(key, 0, 3) {
		t.Fatal("eviction did not take the least recently used slice (1)")
	}
	if _, err := os.Stat(s.path(SliceID(key, 0, 1))); !os.IsNotExist(err) {
		t.Fatal("the evicted file is still on disk")
	}
	if st := s.Stats(); st.Evictions != 1 || st.Bytes != 3*(HeaderBytes+n) {
		t.Fatalf("stats %+v", st)
	}
}

// TestWriteErrorsDegrade: a folder that cannot be written (the slices
// folder replaced by a file: ENOTDIR, also as root) costs a counted error
// and a pause, never a panic or a blocked Put.
func TestWriteErrorsDegrade(t *testing.T) {
	dir := t.TempDir()
	now := time.Unix(1000, 0)
	s, err := Open(Config{Dir: dir, MaxBytes: 64 << 20, SliceBytes: 4096, ErrorCooldown: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Load(zeroGen)
	os.RemoveAll(filepath.Join(dir, "tmp"))
	os.WriteFile(filepath.Join(dir, "tmp"), []byte("not a folder"), 0o644)
	s.Put(key, 0, 0, testMeta(100), randBytes(1, 100))
	s.Flush()
	st := s.Stats()
	if st.WriteErrors != 1 || !st.Degraded || st.Files != 0 {
		t.Fatalf("after a failed write: %+v", st)
	}
	for i := range 100 { // paused: dropped at once
		s.Put(key, 0, int64(i+1), testMeta(1000), randBytes(1, 10))
	}
	s.Flush()
	if st := s.Stats(); st.WriteErrors != 1 || st.Dropped != 100 {
		t.Fatalf("while paused: %+v, want 100 dropped and no new errors", st)
	}
	if _, _, ok := s.Read(key, 0, 0); ok {
		t.Fatal("read a slice that was never written")
	}
}

// TestQueueDropsWhenFull: Put never blocks; what does not fit in
// QueueBytes is dropped.
func TestQueueDropsWhenFull(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{Dir: dir, MaxBytes: 64 << 20, SliceBytes: 4096, QueueBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Load(zeroGen)
	s.Put(key, 0, 0, testMeta(10000), randBytes(1, 2000))
	for i := range 10 {
		s.Put(key, 0, int64(i+1), testMeta(10000), randBytes(uint64(i), 400))
	}
	s.Flush()
	st := s.Stats()
	if st.Dropped == 0 || st.Writes+st.Dropped != 11 || s.Has(key, 0, 0) {
		t.Fatalf("stats %+v: want the oversized put dropped, every put written or dropped", st)
	}
}

// TestSliceFilesAreNeverRewritten: what OpenSlice hands out stays the
// bytes it was: evicting the slice unlinks its file (the descriptor still
// reads it), and writing the slice again makes a new file, never the same
// inode rewritten.
func TestSliceFilesAreNeverRewritten(t *testing.T) {
	dir := t.TempDir()
	const n = 1000
	s := open(t, dir, 2*(HeaderBytes+n))
	s.Load(zeroGen)
	want := randBytes(7, n)
	s.Put(key, 0, 0, testMeta(10*n), want)
	s.Flush()
	fd, size, ok := s.OpenSlice(key, 0, 0, testMeta(10*n).ETag)
	if !ok || size != n {
		t.Fatalf("OpenSlice = %d, %d, %v", fd, size, ok)
	}
	defer unix.Close(fd)
	if _, _, ok := s.OpenSlice(key, 0, 0, `"other"`); ok {
		t.Fatal("OpenSlice opened a slice of another object version")
	}
	var before unix.Stat_t
	unix.Fstat(fd, &before)
	for i := 1; i <= 2; i++ { // evicts slice 0
		s.Put(key, 0, int64(i), testMeta(10*n), randBytes(uint64(i), n))
		s.Flush()
	}
	if s.Has(key, 0, 0) {
		t.Fatal("slice 0 was not evicted")
	}
	s.Put(key, 0, 0, testMeta(10*n), want) // the same slice again
	s.Flush()
	var after unix.Stat_t
	if err := unix.Stat(s.path(SliceID(key, 0, 0)), &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino == before.Ino {
		t.Fatal("the slice was written into the inode an open descriptor refers to")
	}
	got := make([]byte, n)
	if k, err := unix.Pread(fd, got, HeaderBytes); k != n || err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the evicted file read through its descriptor: %d, %v, equal %v", k, err, bytes.Equal(got, want))
	}
}
