package disk

import (
	"bufio"
	"bytes"
	"cmp"
	"container/list"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config tunes a Store. Zero fields take the defaults shown.
type Config struct {
	// Dir is the folder the store owns. Required.
	Dir string
	// MaxBytes is the budget, counted in file sizes (header included).
	// Required.
	MaxBytes int64
	// SliceBytes is the size of a slice (the last of an object may be
	// shorter). Files written with another size are discarded: their
	// indexes count in other units. Required.
	SliceBytes int64
	// QueueBytes bounds the slice bytes waiting to be written. Default
	// 64 MiB.
	QueueBytes int64
	// ErrorCooldown is how long the writer pauses after a write error.
	// Default 10s.
	ErrorCooldown time.Duration
	// Logger receives warnings (write errors, discarded files). Default:
	// discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Purges are the purge generations a Store persists: Floor is the
// generation of "everything", Prefixes those of purged folders, Seq the
// largest generation recorded (the next purge must take a larger one).
type Purges struct {
	Seq      uint64
	Floor    uint64
	Prefixes map[string]uint64
}

// Purge is one purged prefix ("" for everything) and its new generation.
type Purge struct {
	Prefix string
	Gen    uint64
}

// Stats are a Store's sizes and counters since Open.
type Stats struct {
	Files, Bytes, MaxBytes  int64
	Writes, WriteErrors     int64
	Dropped                 int64 // Puts not written: queue full, paused or broken
	Hits, Misses            int64
	ReadErrors, Corrupt     int64
	Evictions, EvictedBytes int64
	Degraded                bool  // writes paused after an error, or the purge log failed
	Scrubbed, ScrubbedBad   int64 // headers checked after Load, files deleted for them
}

// LoadStats says what Load found.
type LoadStats struct {
	Files, Bytes int64
	Discarded    int64 // torn, foreign, purged or misnamed files deleted
	Evicted      int64 // over the budget
	Took         time.Duration
}

// Store is the disk tier (see the package doc). Open it, Load its index,
// then Put, Read and OpenSlice; Close when done. A Store is safe for
// concurrent use.
type Store struct {
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	slicesDir string
	tmpDir    string
	genPath   string

	mu    sync.Mutex
	index map[ID]*entry
	lru   list.List // of *entry, most recently used first
	used  int64

	genMu   sync.Mutex
	genLog  *os.File // nil: broken
	purges  Purges   // as loaded at Open
	trusted bool     // the purge log was read: slice files may be kept

	queue      chan job
	queued     atomic.Int64
	pending    sync.WaitGroup
	pauseUntil atomic.Int64 // unix nanoseconds
	broken     atomic.Bool
	closed     atomic.Bool
	done       chan struct{}
	scrubDone  chan struct{} // closed when Load's scrub is over
	loaded     bool          // Load ran (set before it returns, read by Close)
	closeOnce  sync.Once

	writes, writeErrors, dropped   atomic.Int64
	hits, misses, readErrs, bad    atomic.Int64
	evictions, evictedBytes, files atomic.Int64
	scrubbed, scrubbedBad          atomic.Int64
}

type entry struct {
	id       ID
	bytes    int64
	verified atomic.Bool // the data's checksum was checked (or this process wrote it)
	elem     *list.Element

	// Set once verified (before verified is stored), for OpenSlice.
	etag  string
	cpath []byte // the file's path, NUL-terminated
}

type job struct {
	hdr  header
	data []byte
}

// Open opens (creating it if needed) the store in cfg.Dir and reads its
// purge log, and starts the writer. The index is empty until Load.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" || cfg.MaxBytes <= 0 || cfg.SliceBytes <= 0 || cfg.SliceBytes > 1<<31 {
		return nil, errors.New("disk: Dir, a positive MaxBytes and a SliceBytes up to 2 GiB are required")
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 64 << 20
	}
	if cfg.ErrorCooldown <= 0 {
		cfg.ErrorCooldown = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{
		cfg: cfg, log: cfg.Logger, now: cfg.Now,
		slicesDir: filepath.Join(cfg.Dir, "slices"),
		tmpDir:    filepath.Join(cfg.Dir, "tmp"),
		genPath:   filepath.Join(cfg.Dir, "generations"),
		index:     make(map[ID]*entry),
		queue:     make(chan job, 4096),
		done:      make(chan struct{}),
		scrubDone: make(chan struct{}),
	}
	if err := s.makeDirs(); err != nil {
		return nil, err
	}
	os.RemoveAll(s.tmpDir) // half-written slices of a previous run
	if err := os.MkdirAll(s.tmpDir, 0o755); err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	}
	if err := s.openPurgeLog(); err != nil {
		return nil, err
	}
	go s.writer()
	return s, nil
}

// makeDirs makes the slices folder and its 256 subfolders.
func (s *Store) makeDirs() error {
	for i := range 256 {
		if err := os.MkdirAll(filepath.Join(s.slicesDir, fmt.Sprintf("%02x", i)), 0o755); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
	}
	return nil
}

// openPurgeLog reads the purge log, rewrites it compacted and keeps it open
// for appending.
func (s *Store) openPurgeLog() error {
	s.purges = Purges{Prefixes: map[string]uint64{}}
	b, err := os.ReadFile(s.genPath)
	switch {
	case err == nil:
		p, perr := parsePurges(b)
		if perr != nil {
			s.log.Warn("disk: purge log unreadable, discarding every slice file", "err", perr)
		} else {
			s.purges, s.trusted = p, true
		}
	case errors.Is(err, fs.ErrNotExist):
		// A new folder, or a log lost: only an empty folder may be trusted
		// (Load deletes the files of an untrusted one).
	default:
		return fmt.Errorf("disk: %w", err)
	}
	var buf bytes.Buffer
	if s.purges.Floor > 0 {
		fmt.Fprintf(&buf, "%d *\n", s.purges.Floor)
	}
	keys := make([]string, 0, len(s.purges.Prefixes))
	for p := range s.purges.Prefixes {
		keys = append(keys, p)
	}
	slices.Sort(keys)
	for _, p := range keys {
		fmt.Fprintf(&buf, "%d %s\n", s.purges.Prefixes[p], p)
	}
	tmp := s.genPath + ".tmp"
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		return fmt.Errorf("disk: purge log: %w", err)
	}
	if err := os.Rename(tmp, s.genPath); err != nil {
		return fmt.Errorf("disk: purge log: %w", err)
	}
	syncDir(s.cfg.Dir)
	f, err := os.OpenFile(s.genPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("disk: purge log: %w", err)
	}
	s.genLog = f
	return nil
}

// parsePurges reads a purge log: lines "<generation> <prefix>" or
// "<generation> *". A last line without its newline is a write that was
// never acknowledged and is ignored; any other bad line fails the log.
func parsePurges(b []byte) (Purges, error) {
	p := Purges{Prefixes: map[string]uint64{}}
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break // torn tail
		}
		line := string(b[:i])
		b = b[i+1:]
		num, pfx, ok := strings.Cut(line, " ")
		gen, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil || gen == 0 || (pfx != "*" && !validPrefix(pfx)) {
			return Purges{}, fmt.Errorf("bad line %q", line)
		}
		p.Seq = max(p.Seq, gen)
		if pfx == "*" {
			p.Floor = max(p.Floor, gen)
		} else {
			p.Prefixes[pfx] = max(p.Prefixes[pfx], gen)
		}
	}
	return p, nil
}

// validPrefix is a coarse check of a logged folder; the edge checks the
// folder rules (cache.PurgeablePrefix) when it restores them.
func validPrefix(p string) bool {
	return len(p) > 1 && strings.HasSuffix(p, "/") && !strings.ContainsAny(p, " \n\r\t*")
}

// Purges returns the purge generations the log held at Open.
func (s *Store) Purges() Purges {
	p := Purges{Seq: s.purges.Seq, Floor: s.purges.Floor, Prefixes: make(map[string]uint64, len(s.purges.Prefixes))}
	for k, v := range s.purges.Prefixes {
		p.Prefixes[k] = v
	}
	return p
}

// RecordPurges appends purges to the log and syncs it; call it before a
// purge is acknowledged. If that fails, the store stops serving and
// deletes the log, so that the next start discards every slice rather than
// bring back a purged one; RecordPurges returns an error only if the log
// could not be deleted either.
func (s *Store) RecordPurges(ps []Purge) error {
	var buf bytes.Buffer
	for _, p := range ps {
		if p.Prefix == "" {
			fmt.Fprintf(&buf, "%d *\n", p.Gen)
		} else if validPrefix(p.Prefix) {
			fmt.Fprintf(&buf, "%d %s\n", p.Gen, p.Prefix)
		} else {
			return fmt.Errorf("disk: bad purge prefix %q", p.Prefix)
		}
	}
	s.genMu.Lock()
	defer s.genMu.Unlock()
	var err error
	if s.genLog == nil {
		err = errors.New("disk: purge log closed")
	} else if _, err = s.genLog.Write(buf.Bytes()); err == nil {
		err = s.genLog.Sync()
	}
	if err == nil {
		return nil
	}
	s.broken.Store(true)
	s.log.Error("disk: purge log write failed; the disk tier stops serving and forgets its slices", "err", err)
	if s.genLog != nil {
		s.genLog.Close()
		s.genLog = nil
	}
	if rerr := os.Remove(s.genPath); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		return fmt.Errorf("disk: purge log: %w (and removing it: %v)", err, rerr)
	}
	syncDir(s.cfg.Dir)
	return nil
}

// Load builds the index from the slice files' names, sizes and
// modification times, without opening them, and starts a background scrub
// that reads every header and deletes the files that must not be kept: a
// header that does not parse, a name or length that does not match it, a
// generation that is not gen(key) (purged), another slice size. Serving
// does not wait for the scrub and does not depend on it: a slice's name
// includes its generation, so a lookup never finds a purged one, and Read
// checks the whole file before anything is served. If the purge log could
// not be read at Open, every slice file is deleted instead (without the
// log, old generations would be current again). Over the budget, the
// oldest files (by modification time) are evicted. Call Load once, before
// serving.
func (s *Store) Load(gen func(key string) uint64) (LoadStats, error) {
	start := s.now()
	if !s.trusted {
		n := s.countFiles()
		if err := os.RemoveAll(s.slicesDir); err != nil {
			return LoadStats{}, fmt.Errorf("disk: %w", err)
		}
		if err := s.makeDirs(); err != nil {
			return LoadStats{}, err
		}
		s.loaded = true
		close(s.scrubDone)
		return LoadStats{Discarded: n, Took: s.now().Sub(start)}, nil
	}
	dirs, err := os.ReadDir(s.slicesDir)
	if err != nil {
		return LoadStats{}, fmt.Errorf("disk: %w", err)
	}
	type found struct {
		id    ID
		bytes int64
		mtime int64
	}
	var (
		mu        sync.Mutex
		all       []found
		discarded atomic.Int64
		wg        sync.WaitGroup
		next      atomic.Int64
	)
	for range 4 {
		wg.Go(func() {
			var mine []found
			for {
				i := int(next.Add(1) - 1)
				if i >= len(dirs) {
					break
				}
				if !dirs[i].IsDir() {
					continue
				}
				dir := filepath.Join(s.slicesDir, dirs[i].Name())
				names, err := os.ReadDir(dir)
				if err != nil {
					continue
				}
				for _, n := range names {
					id, ok := parseID(n.Name())
					fi, err := n.Info()
					if !ok || err != nil || !fi.Mode().IsRegular() || fi.Size() <= HeaderBytes {
						os.Remove(filepath.Join(dir, n.Name()))
						discarded.Add(1)
						continue
					}
					mine = append(mine, found{id, fi.Size(), fi.ModTime().UnixNano()})
				}
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	// Newest first, each to the back of the LRU list: the oldest are evicted first.
	slices.SortFunc(all, func(a, b found) int { return cmp.Compare(b.mtime, a.mtime) })
	var st LoadStats
	s.mu.Lock()
	scrub := make([]*entry, 0, len(all))
	for _, f := range all {
		if _, dup := s.index[f.id]; dup {
			continue
		}
		e := &entry{id: f.id, bytes: f.bytes}
		e.elem = s.lru.PushBack(e)
		s.index[f.id] = e
		s.used += f.bytes
		scrub = append(scrub, e)
	}
	victims := s.evictLocked()
	s.mu.Unlock()
	s.unlink(victims)
	st.Evicted = int64(len(victims))
	st.Files, st.Bytes = int64(len(s.index)), s.used
	s.files.Store(st.Files)
	st.Discarded = discarded.Load()
	st.Took = s.now().Sub(start)
	s.loaded = true
	go s.scrub(scrub, gen)
	return st, nil
}

// scrub checks the header of every entry Load indexed, and drops those
// that fail (see Load). It stops early when the store closes.
func (s *Store) scrub(entries []*entry, gen func(string) uint64) {
	defer close(s.scrubDone)
	hdr := make([]byte, HeaderBytes)
	for _, e := range entries {
		select {
		case <-s.done:
			return
		default:
		}
		if e.verified.Load() {
			continue
		}
		switch s.checkHeader(e.id, hdr, gen) {
		case checkBad:
			s.scrubbedBad.Add(1)
			s.drop(e)
		case checkGone: // evicted or dropped meanwhile
		}
		s.scrubbed.Add(1)
	}
}

// WaitScrub waits until the scrub Load started is done (for tests and
// benchmarks).
func (s *Store) WaitScrub() { <-s.scrubDone }

const (
	checkOK = iota
	checkBad
	checkGone
)

// checkHeader reads the header of slice file id and says whether the file
// may be kept.
func (s *Store) checkHeader(id ID, hdr []byte, gen func(string) uint64) int {
	f, err := os.Open(s.path(id))
	if err != nil {
		return checkGone
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return checkGone
	}
	if _, err := io.ReadFull(f, hdr); err != nil {
		return checkBad
	}
	h, err := decodeHeader(hdr)
	if err != nil || fi.Size() != HeaderBytes+int64(h.dataLen) || int64(h.sliceBytes) != s.cfg.SliceBytes ||
		SliceID(h.key, h.gen, h.idx) != id || h.gen != gen(h.key) {
		return checkBad
	}
	return checkOK
}

// countFiles counts the slice files (for the log of a wipe).
func (s *Store) countFiles() int64 {
	var n int64
	filepath.WalkDir(s.slicesDir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return nil
	})
	return n
}

// evictLocked removes least recently used entries until the budget holds,
// and returns them for unlink. s.mu is held.
func (s *Store) evictLocked() []*entry {
	var victims []*entry
	for s.used > s.cfg.MaxBytes && s.lru.Len() > 0 {
		e := s.lru.Remove(s.lru.Back()).(*entry)
		delete(s.index, e.id)
		s.used -= e.bytes
		victims = append(victims, e)
	}
	return victims
}

func (s *Store) unlink(victims []*entry) {
	for _, e := range victims {
		os.Remove(s.path(e.id))
		s.evictions.Add(1)
		s.evictedBytes.Add(e.bytes)
	}
}

func (s *Store) path(id ID) string {
	h := id.String()
	return filepath.Join(s.slicesDir, h[:2], h+".slice")
}

// Has reports whether slice idx of key at generation gen is on disk.
func (s *Store) Has(key string, gen uint64, idx int64) bool {
	id := SliceID(key, gen, idx)
	s.mu.Lock()
	_, ok := s.index[id]
	s.mu.Unlock()
	return ok
}

// Put queues slice idx of key at generation gen, with data and the
// object's meta, for writing. It never blocks: when the queue is full, the
// writer is pausing after an error, or the store is broken, the slice is
// dropped (and counted). data must not be modified afterwards.
func (s *Store) Put(key string, gen uint64, idx int64, meta Meta, data []byte) {
	if s.closed.Load() || s.broken.Load() || len(data) == 0 || s.now().UnixNano() < s.pauseUntil.Load() {
		s.dropped.Add(1)
		return
	}
	if s.Has(key, gen, idx) {
		return
	}
	n := int64(len(data))
	if s.queued.Add(n) > s.cfg.QueueBytes {
		s.queued.Add(-n)
		s.dropped.Add(1)
		return
	}
	s.pending.Add(1)
	j := job{hdr: header{key: key, gen: gen, idx: idx, meta: meta, dataLen: uint32(n)}, data: data}
	select {
	case s.queue <- j:
	default:
		s.queued.Add(-n)
		s.pending.Done()
		s.dropped.Add(1)
	}
}

// Flush waits until every slice queued before it is written or dropped.
func (s *Store) Flush() { s.pending.Wait() }

func (s *Store) writer() {
	hdr := make([]byte, HeaderBytes)
	for {
		select {
		case j := <-s.queue:
			s.write(j, hdr)
			s.queued.Add(-int64(len(j.data)))
			s.pending.Done()
		case <-s.done:
			return
		}
	}
}

// write writes one slice file: to tmp, then renamed into place.
func (s *Store) write(j job, hdr []byte) {
	if s.broken.Load() || s.now().UnixNano() < s.pauseUntil.Load() {
		s.dropped.Add(1)
		return
	}
	id := SliceID(j.hdr.key, j.hdr.gen, j.hdr.idx)
	if s.Has(j.hdr.key, j.hdr.gen, j.hdr.idx) {
		return
	}
	size := HeaderBytes + int64(len(j.data))
	j.hdr.sliceBytes = uint32(s.cfg.SliceBytes)
	if size > s.cfg.MaxBytes || int64(len(j.data)) > s.cfg.SliceBytes {
		s.dropped.Add(1)
		return
	}
	j.hdr.dataCRC = crc32.Checksum(j.data, castagnoli)
	if err := encodeHeader(hdr, &j.hdr); err != nil {
		s.dropped.Add(1)
		return
	}
	err := s.writeFile(id, hdr, j.data)
	if err != nil {
		s.writeErrors.Add(1)
		s.pauseUntil.Store(s.now().Add(s.cfg.ErrorCooldown).UnixNano())
		s.log.Warn("disk: slice write failed; writes pause", "err", err, "cooldown", s.cfg.ErrorCooldown)
		return
	}
	s.writes.Add(1)
	e := &entry{id: id, bytes: size, etag: j.hdr.meta.ETag, cpath: cPath(s.path(id))}
	e.verified.Store(true)
	s.mu.Lock()
	if old, ok := s.index[id]; ok { // cannot happen with one writer; keep the books right anyway
		s.lru.Remove(old.elem)
		s.used -= old.bytes
	}
	e.elem = s.lru.PushFront(e)
	s.index[id] = e
	s.used += size
	victims := s.evictLocked()
	s.files.Store(int64(len(s.index)))
	s.mu.Unlock()
	s.unlink(victims)
}

func (s *Store) writeFile(id ID, hdr, data []byte) error {
	f, err := os.CreateTemp(s.tmpDir, "w-*")
	if err != nil {
		return err
	}
	_, err = f.Write(hdr)
	if err == nil {
		_, err = f.Write(data)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.path(id))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// lookup finds the entry of a slice and marks it used.
func (s *Store) lookup(id ID) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.index[id]
	if !ok {
		return nil
	}
	s.lru.MoveToFront(e.elem)
	return e
}

// drop forgets e (if still indexed) and deletes its file.
func (s *Store) drop(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index[e.id] == e {
		delete(s.index, e.id)
		s.lru.Remove(e.elem)
		s.used -= e.bytes
		s.files.Store(int64(len(s.index)))
		// Under the lock: the writer writes a slice only when it is not
		// indexed, so it cannot have put a new file here yet.
		os.Remove(s.path(e.id))
	}
}

// Read returns the data of slice idx of key at generation gen and its
// object's meta, checked against the file's checksums, and reports whether
// it was there. A file that fails a check is deleted; a read error is
// counted. Either is a miss for the caller.
func (s *Store) Read(key string, gen uint64, idx int64) ([]byte, Meta, bool) {
	if s.broken.Load() {
		s.misses.Add(1)
		return nil, Meta{}, false
	}
	id := SliceID(key, gen, idx)
	e := s.lookup(id)
	if e == nil {
		s.misses.Add(1)
		return nil, Meta{}, false
	}
	f, err := os.Open(s.path(id))
	if err != nil {
		s.readErrs.Add(1)
		s.drop(e)
		return nil, Meta{}, false
	}
	defer f.Close()
	buf := make([]byte, e.bytes)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !(errors.Is(err, io.EOF) && int64(n) == e.bytes) {
		if errors.Is(err, io.EOF) { // shorter than when indexed: torn
			s.bad.Add(1)
		} else {
			s.readErrs.Add(1)
		}
		s.drop(e)
		return nil, Meta{}, false
	}
	h, ok := s.verify(buf, key, gen, idx)
	if !ok {
		s.bad.Add(1)
		s.log.Warn("disk: slice file failed its checks, deleted", "key", key, "index", idx)
		s.drop(e)
		return nil, Meta{}, false
	}
	s.mu.Lock() // e.etag and e.cpath are read under it by OpenSlice until verified is set
	if !e.verified.Load() {
		e.etag, e.cpath = h.meta.ETag, cPath(s.path(id))
		e.verified.Store(true)
	}
	s.mu.Unlock()
	s.hits.Add(1)
	return buf[HeaderBytes:], h.meta, true
}

// OpenSlice opens the file of slice idx of key at generation gen so that a
// response can send its pages by reference (sendfile): if the slice is on
// disk, its file was checked since the start (Read, or written by this
// process) and it is of the object version etag. It returns the file
// descriptor, which the caller must close, and the data's length; the data
// starts at HeaderBytes. The file is never modified, and eviction only
// unlinks it: the descriptor keeps the pages the response sends. OpenSlice
// does not allocate; it counts as a use and, when it opens, as a hit.
func (s *Store) OpenSlice(key string, gen uint64, idx int64, etag string) (fd int, n int64, ok bool) {
	if s.broken.Load() {
		return -1, 0, false
	}
	id := SliceID(key, gen, idx)
	s.mu.Lock()
	e, found := s.index[id]
	if !found || !e.verified.Load() || e.etag != etag {
		s.mu.Unlock()
		return -1, 0, false
	}
	s.lru.MoveToFront(e.elem)
	path := e.cpath
	s.mu.Unlock()
	dirfd := unix.AT_FDCWD
	r, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		if errno != unix.ENOENT { // ENOENT: evicted meanwhile
			s.readErrs.Add(1)
		}
		return -1, 0, false
	}
	s.hits.Add(1)
	return int(r), e.bytes - HeaderBytes, true
}

// cPath returns path as a NUL-terminated byte string for system calls.
func cPath(path string) []byte { return append([]byte(path), 0) }

// verify checks a whole slice file in buf against the slice it must be.
func (s *Store) verify(buf []byte, key string, gen uint64, idx int64) (header, bool) {
	h, err := decodeHeader(buf)
	if err != nil || h.key != key || h.gen != gen || h.idx != idx || int64(h.sliceBytes) != s.cfg.SliceBytes ||
		int64(len(buf)) != HeaderBytes+int64(h.dataLen) {
		return h, false
	}
	return h, crc32.Checksum(buf[HeaderBytes:], castagnoli) == h.dataCRC
}

// Stats returns the store's sizes and counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	used := s.used
	s.mu.Unlock()
	return Stats{
		Files: s.files.Load(), Bytes: used, MaxBytes: s.cfg.MaxBytes,
		Writes: s.writes.Load(), WriteErrors: s.writeErrors.Load(), Dropped: s.dropped.Load(),
		Hits: s.hits.Load(), Misses: s.misses.Load(), ReadErrors: s.readErrs.Load(), Corrupt: s.bad.Load(),
		Evictions: s.evictions.Load(), EvictedBytes: s.evictedBytes.Load(),
		Scrubbed: s.scrubbed.Load(), ScrubbedBad: s.scrubbedBad.Load(),
		Degraded: s.broken.Load() || s.now().UnixNano() < s.pauseUntil.Load(),
	}
}

// Close writes what is queued, stops the writer and closes the purge log.
// It is idempotent.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.Flush()
		close(s.done)
		select {
		case <-s.scrubDone:
		default:
			if s.loaded {
				<-s.scrubDone
			}
		}
		s.genMu.Lock()
		if s.genLog != nil {
			err = s.genLog.Close()
			s.genLog = nil
		}
		s.genMu.Unlock()
	})
	return err
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	w.Write(b)
	err = w.Flush()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
