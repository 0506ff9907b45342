package blob

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Names of the FS store's own files. They start with a dot, which no key
// segment may (see ValidateKey), so they never clash with objects and List
// never shows them.
const (
	tmpPrefix  = ".tmp-"  // a Put in progress (or one a crash interrupted)
	metaPrefix = ".meta-" // metadata of one file generation, see fsMeta
)

// copyBufSize is the buffer Put copies through; ctx is checked once per read.
const copyBufSize = 256 << 10

// FS is a Store in a local folder: the object with key "a/b/c.mp4" is the
// plain file a/b/c.mp4 under the root, so the folder can be inspected,
// backed up or synced to S3 with ordinary tools.
//
// All file access goes through an os.Root, so no key, symlink or rename race
// can reach outside the root. See the package documentation for how Put stays
// atomic and durable and where ETags come from.
//
// FS is safe for concurrent use, also by several processes sharing a root.
type FS struct {
	dir   string // absolute path of the root, for messages
	root  *os.Root
	seed  maphash.Seed
	locks [64]sync.Mutex // serialise commit and delete of one key, by hash
	once  sync.Once
}

var _ Store = (*FS)(nil)

// NewFS returns a store rooted at the folder dir, creating it (and its
// parents) if needed. Call Close when done.
func NewFS(dir string) (*FS, error) {
	if dir == "" {
		return nil, errors.New("blob: NewFS: empty root folder")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob: NewFS %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("blob: NewFS: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("blob: NewFS: %w", err)
	}
	return &FS{dir: abs, root: root, seed: maphash.MakeSeed()}, nil
}

// Dir returns the absolute path of the store's root folder.
func (s *FS) Dir() string { return s.dir }

// Close releases the handle on the root folder. The store must not be used
// afterwards. Close is idempotent.
func (s *FS) Close() error {
	var err error
	s.once.Do(func() { err = s.root.Close() })
	return err
}

// objectName validates key and maps it to a file name relative to the root.
// It is the only place keys become paths.
func objectName(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	name := filepath.FromSlash(key)
	if !filepath.IsLocal(name) {
		// Unreachable for keys ValidateKey accepts on Unix; on Windows this
		// catches reserved names such as "CON".
		return "", fmt.Errorf("%w %q: not a local file name", ErrInvalidKey, key)
	}
	return name, nil
}

// Put implements Store.
func (s *FS) Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error) {
	name, err := objectName(key)
	if err != nil {
		return Info{}, err
	}
	ct, err := putContentType(key, opts)
	if err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, opErr("put", key, err)
	}
	info, err := s.put(ctx, key, name, r, ct)
	if err != nil {
		return Info{}, opErr("put", key, err)
	}
	return info, nil
}

func (s *FS) put(ctx context.Context, key, name string, r io.Reader, ct string) (Info, error) {
	dir := filepath.Dir(name)
	created, err := s.mkdirs(dir)
	if err != nil {
		return Info{}, err
	}
	f, tmp, err := s.createTemp(dir)
	if err != nil {
		return Info{}, err
	}
	// Until the rename, everything written is ours alone; on any failure
	// remove it. The sidecar goes first: its name holds our temp file's
	// inode, which must not be freed (and reused) before.
	var sidecar string
	committed := false
	defer func() {
		if f != nil {
			f.Close()
		}
		if !committed {
			if sidecar != "" {
				s.root.Remove(sidecar)
			}
			s.root.Remove(tmp)
		}
	}()

	h := sha256.New()
	size, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, make([]byte, copyBufSize))
	if err != nil {
		return Info{}, err
	}
	if err := f.Sync(); err != nil {
		return Info{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		return Info{}, err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return Info{}, err
	}
	info := Info{
		Key:         key,
		Size:        size,
		ETag:        `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`,
		ContentType: ct,
		ModTime:     fi.ModTime(),
	}
	if mn, ok := metaName(fi); ok {
		sidecar = filepath.Join(dir, mn)
		if err := s.writeMeta(sidecar, filepath.Base(name), fi, info); err != nil {
			return Info{}, err
		}
	} else {
		info.ETag = statETag(fi)
	}
	// Last chance to back out without touching the existing object.
	if err := ctx.Err(); err != nil {
		return Info{}, err
	}

	mu := s.lock(key)
	mu.Lock()
	old, oldErr := s.root.Lstat(name)
	err = s.root.Rename(tmp, name)
	if err == nil {
		committed = true
		// The replaced generation's sidecar is garbage now. Its name
		// holds that generation's mtime, so even if the inode was reused
		// at once this cannot remove a live sidecar.
		if oldErr == nil && old.Mode().IsRegular() {
			if mn, ok := metaName(old); ok && filepath.Join(dir, mn) != sidecar {
				s.root.Remove(filepath.Join(dir, mn))
			}
		}
	}
	mu.Unlock()
	if err != nil {
		return Info{}, err
	}
	// The object is in place; make the rename (and new folders) durable.
	if err := s.syncDirs(dir, created); err != nil {
		return Info{}, fmt.Errorf("written but not synced: %w", err)
	}
	return info, nil
}

// mkdirs creates dir and its parents and reports whether it had to.
func (s *FS) mkdirs(dir string) (created bool, err error) {
	if fi, err := s.root.Stat(dir); err == nil && fi.IsDir() {
		return false, nil
	}
	return true, s.root.MkdirAll(dir, 0o755)
}

// createTemp creates a new hidden file in dir. A concurrent Delete may prune
// dir between mkdirs and the create, so recreate it and retry.
func (s *FS) createTemp(dir string) (*os.File, string, error) {
	var err error
	for range 5 {
		tmp := filepath.Join(dir, tmpPrefix+rand.Text())
		var f *os.File
		f, err = s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, tmp, nil
		}
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			break
		}
		if err := s.root.MkdirAll(dir, 0o755); err != nil {
			return nil, "", err
		}
	}
	return nil, "", err
}

// syncDirs fsyncs dir; if folders were created, also every parent up to the
// root so their entries are durable too.
func (s *FS) syncDirs(dir string, created bool) error {
	for {
		if err := s.syncDir(dir); err != nil {
			return err
		}
		if !created || dir == "." {
			return nil
		}
		dir = filepath.Dir(dir)
	}
}

func (s *FS) syncDir(dir string) error {
	d, err := s.root.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *FS) lock(key string) *sync.Mutex {
	return &s.locks[maphash.String(s.seed, key)%uint64(len(s.locks))]
}

// Get implements Store. A whole object is returned as its *os.File, so
// copying it to a socket can use sendfile.
func (s *FS) Get(ctx context.Context, key string, rng *Range) (io.ReadCloser, Info, error) {
	name, err := objectName(key)
	if err != nil {
		return nil, Info{}, err
	}
	if err := checkRange(rng); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	f, err := s.root.Open(name)
	if err != nil {
		return nil, Info{}, opErr("get", key, notFound(err))
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		f.Close()
		return nil, Info{}, opErr("get", key, err)
	}
	info := s.info(key, name, fi, true)
	if rng == nil {
		return f, info, nil
	}
	off, n, err := clampRange(*rng, fi.Size())
	if err != nil {
		f.Close()
		return nil, Info{}, opErr("get", key, err)
	}
	return sectionReadCloser{io.NewSectionReader(f, off, n), f}, info, nil
}

// sectionReadCloser reads a range of a file and closes the file.
type sectionReadCloser struct {
	*io.SectionReader
	io.Closer
}

// Stat implements Store.
func (s *FS) Stat(ctx context.Context, key string) (Info, error) {
	name, err := objectName(key)
	if err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, opErr("stat", key, err)
	}
	fi, err := s.root.Stat(name)
	if err == nil && !fi.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		return Info{}, opErr("stat", key, notFound(err))
	}
	return s.info(key, name, fi, true), nil
}

// Delete implements Store. It also removes folders the deletion left empty,
// up to the root.
func (s *FS) Delete(ctx context.Context, key string) error {
	name, err := objectName(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opErr("delete", key, err)
	}
	dir := filepath.Dir(name)
	mu := s.lock(key)
	mu.Lock()
	fi, err := s.root.Lstat(name)
	if err == nil && fi.IsDir() {
		err = fs.ErrNotExist // a folder of other objects, not an object
	}
	if err == nil {
		err = s.root.Remove(name)
		if err == nil {
			if mn, ok := metaName(fi); ok {
				s.root.Remove(filepath.Join(dir, mn))
			}
		}
	}
	mu.Unlock()
	if err != nil {
		if errors.Is(notFound(err), ErrNotFound) {
			return nil
		}
		return opErr("delete", key, err)
	}
	if err := s.syncDir(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return opErr("delete", key, err)
	}
	// Best effort: Remove fails on a folder that is not empty, which
	// includes one where a Put is writing its temp file.
	for d := dir; d != "."; d = filepath.Dir(d) {
		if s.root.Remove(d) != nil {
			break
		}
	}
	return nil
}

// List implements Store. Folders are read one at a time and sorted so that
// the order is exactly that of the keys ("a-b" before "a/b"), which is not
// quite what filepath.WalkDir gives.
func (s *FS) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		if err := ValidatePrefix(prefix); err != nil {
			yield(Info{}, err)
			return
		}
		dir, first := "", prefix
		if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
			dir, first = prefix[:i], prefix[i+1:]
		}
		if err := s.walk(ctx, dir, first, yield); err != nil && err != errStop {
			yield(Info{}, opErr("list", prefix, err))
		}
	}
}

// errStop ends a walk because the consumer stopped.
var errStop = errors.New("stop")

// walk yields the objects in the folder named by the key prefix dir ("" is
// the root) whose names start with first, and those below its subfolders
// whose names do.
func (s *FS) walk(ctx context.Context, dir, first string, yield func(Info, error) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := s.readDir(dir)
	if err != nil {
		if errors.Is(notFound(err), ErrNotFound) {
			return nil // no such folder, or pruned while we walked
		}
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, first) || strings.HasPrefix(name, ".") {
			continue
		}
		key := name
		if dir != "" {
			key = dir + "/" + name
		}
		if ValidateKey(key) != nil {
			continue // not written by us
		}
		if e.IsDir() {
			if err := s.walk(ctx, key, "", yield); err != nil {
				return err
			}
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we walked
		}
		if err != nil {
			return err
		}
		info := s.info(key, filepath.FromSlash(key), fi, false)
		if !yield(info, nil) {
			return errStop
		}
	}
	return nil
}

// readDir returns the entries of the folder dir (a key prefix), sorted in key
// order: a folder sorts as its name plus "/".
func (s *FS) readDir(dir string) ([]fs.DirEntry, error) {
	name := "."
	if dir != "" {
		name = filepath.FromSlash(dir)
	}
	d, err := s.root.Open(name)
	if err != nil {
		return nil, err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int {
		return strings.Compare(sortName(a), sortName(b))
	})
	return entries, nil
}

// fsMeta is the sidecar of one generation of an object file: the data Put
// computed that the file itself cannot hold. Its file name (see metaName)
// and the Name, Size and MTime fields bind it to exactly one file; anything
// that does not match is ignored, so a stale sidecar is never believed.
type fsMeta struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	MTime       int64  `json:"mtime_ns"`
	ETag        string `json:"etag"`
	ContentType string `json:"content_type"`
}

// metaName returns the sidecar name for the file generation fi: its inode
// number and modification time. It reports false where the platform has no
// inode numbers; such systems do without sidecars.
func metaName(fi fs.FileInfo) (string, bool) {
	ino, ok := fileID(fi)
	if !ok {
		return "", false
	}
	return metaPrefix + strconv.FormatUint(ino, 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16), true
}

// writeMeta writes and fsyncs the sidecar for the file fi, which will be
// renamed to base.
func (s *FS) writeMeta(name, base string, fi fs.FileInfo, info Info) error {
	b, err := json.Marshal(fsMeta{
		Name:        base,
		Size:        fi.Size(),
		MTime:       fi.ModTime().UnixNano(),
		ETag:        info.ETag,
		ContentType: info.ContentType,
	})
	if err != nil {
		return err
	}
	f, err := s.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// info describes the object file name, of which fi is the current state. The
// ETag and content type come from the file's sidecar when one matches it;
// otherwise the ETag is derived from fi (statETag) and the type from the key.
func (s *FS) info(key, name string, fi fs.FileInfo, withType bool) Info {
	info := Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	var m fsMeta
	if s.readMeta(name, fi, &m) {
		info.ETag, info.ContentType = m.ETag, m.ContentType
	} else {
		info.ETag, info.ContentType = statETag(fi), ContentTypeFor(key)
	}
	if !withType {
		info.ContentType = ""
	}
	return info
}

// readMeta reads the sidecar of the file name in state fi into m and reports
// whether it exists and belongs to that file.
func (s *FS) readMeta(name string, fi fs.FileInfo, m *fsMeta) bool {
	mn, ok := metaName(fi)
	if !ok {
		return false
	}
	b, err := s.root.ReadFile(filepath.Join(filepath.Dir(name), mn))
	if err != nil || json.Unmarshal(b, m) != nil {
		return false
	}
	return m.Name == filepath.Base(name) && m.Size == fi.Size() &&
		m.MTime == fi.ModTime().UnixNano() && m.ETag != "" && m.ContentType != ""
}

// statETag is the fallback validator for a file without a usable sidecar:
// its size, modification time and inode number. Every Put creates a new file
// (new inode, new mtime), so it changes whenever the content does.
func statETag(fi fs.FileInfo) string {
	e := `"` + strconv.FormatInt(fi.Size(), 16) + "-" + strconv.FormatInt(fi.ModTime().UnixNano(), 16)
	if ino, ok := fileID(fi); ok {
		e += "-" + strconv.FormatUint(ino, 16)
	}
	return e + `"`
}

// notFound turns "no such file" (also "a parent is a file") into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return ErrNotFound
	}
	return err
}
