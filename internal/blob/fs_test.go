package blob

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// newTestFS returns an FS rooted at parent/root, where parent is a fresh
// temp folder that should hold nothing else.
func newTestFS(t testing.TB) (s *FS, parent string) {
	t.Helper()
	parent = t.TempDir()
	s, err := NewFS(filepath.Join(parent, "root"))
	if err != nil {
		t.Fatalf("NewFS: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, parent
}

func TestFS(t *testing.T) {
	testStore(t, func(t *testing.T) backend {
		s, parent := newTestFS(t)
		return backend{Store: s, leftovers: func(t *testing.T) []string { return fsLeftovers(t, s, parent) }}
	})
}

// fsLeftovers lists files outside the root, temp files, and sidecars that
// belong to no object.
func fsLeftovers(t *testing.T, s *FS, parent string) []string {
	t.Helper()
	var left []string
	err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == parent || p == s.Dir() {
			return nil
		}
		if !strings.HasPrefix(p, s.Dir()+string(filepath.Separator)) {
			left = append(left, p)
			return nil
		}
		name := d.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			left = append(left, p)
		case strings.HasPrefix(name, metaPrefix):
			if !liveSidecar(t, filepath.Dir(p), name) {
				left = append(left, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", parent, err)
	}
	return left
}

// liveSidecar reports whether some object file in dir has the sidecar name.
func liveSidecar(t *testing.T, dir, name string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.Mode().IsRegular() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if mn, ok := metaName(fi); ok && mn == name {
			return true
		}
	}
	return false
}

func TestFSLayout(t *testing.T) {
	s, _ := newTestFS(t)
	key := "artists/7/albums/3/songs/42/v1/aac_128.mp4"
	mustPut(t, s, key, []byte("data"), PutOptions{})
	got, err := os.ReadFile(filepath.Join(s.Dir(), filepath.FromSlash(key)))
	if err != nil || string(got) != "data" {
		t.Errorf("object file = %q, %v; want a plain file holding %q", got, err, "data")
	}
}

func TestFSHiddenFilesNotListed(t *testing.T) {
	s, _ := newTestFS(t)
	mustPut(t, s, "a/b.mp4", []byte("b"), PutOptions{})
	for _, name := range []string{"a/.tmp-crashed", ".tmp-x", "a/.meta-1-2", ".DS_Store", "a/.hidden/c"} {
		p := filepath.Join(s.Dir(), filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Names no key can have are skipped too.
	for _, name := range []string{"a/back\\slash", "a/ctl\x01"} {
		if err := os.WriteFile(filepath.Join(s.Dir(), filepath.FromSlash(name)), []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"a/b.mp4"}) {
		t.Errorf("List = %q, want only a/b.mp4", got)
	}
}

// TestFSSidecar checks that ETag and content type survive in the sidecar,
// and that a missing or stale sidecar is never believed.
func TestFSSidecar(t *testing.T) {
	s, _ := newTestFS(t)
	key := "a/song.mp4"
	path := filepath.Join(s.Dir(), "a", "song.mp4")
	put := mustPut(t, s, key, []byte("one"), PutOptions{ContentType: "audio/x-special"})
	if st, err := s.Stat(t.Context(), key); err != nil || st.ETag != put.ETag || st.ContentType != "audio/x-special" {
		t.Fatalf("Stat = %+v, %v; want ETag %s and the explicit type", st, err, put.ETag)
	}
	sidecars, _ := filepath.Glob(filepath.Join(s.Dir(), "a", metaPrefix+"*"))
	if len(sidecars) != 1 {
		t.Fatalf("sidecars = %q, want one", sidecars)
	}

	// Without its sidecar the object is still served, with a fallback ETag
	// and the type from the extension.
	if err := os.Remove(sidecars[0]); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stat(t.Context(), key)
	if err != nil || st.Size != 3 || !isQuoted(st.ETag) || st.ETag == put.ETag || st.ContentType != "audio/mp4" {
		t.Errorf("Stat without sidecar = %+v, %v; want size 3, a quoted fallback ETag, type audio/mp4", st, err)
	}

	// A file replaced behind the store's back does not inherit the old
	// sidecar's ETag, even with the same size.
	put = mustPut(t, s, key, []byte("two"), PutOptions{})
	if err := os.WriteFile(path+".new", []byte("3rd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stat(t.Context(), key); err != nil || st.ETag == put.ETag {
		t.Errorf("Stat after out-of-band replace = %+v, %v; want an ETag other than %s", st, err, put.ETag)
	}
	// Writing in place (same inode) is caught by size or mtime.
	put = mustPut(t, s, key, []byte("four"), PutOptions{})
	if err := os.WriteFile(path, []byte("five!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stat(t.Context(), key); err != nil || st.ETag == put.ETag {
		t.Errorf("Stat after in-place write = %+v, %v; want an ETag other than %s", st, err, put.ETag)
	}
}

func TestFSDeletePrunesFolders(t *testing.T) {
	s, _ := newTestFS(t)
	mustPut(t, s, "artists/1/albums/2/a.mp4", []byte("a"), PutOptions{})
	mustPut(t, s, "artists/1/b.mp4", []byte("b"), PutOptions{})
	if err := s.Delete(t.Context(), "artists/1/albums/2/a.mp4"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "artists", "1", "albums")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("artists/1/albums still there after its last object went: %v", err)
	}
	if err := s.Delete(t.Context(), "artists/1/b.mp4"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(s.Dir())
	if err != nil || len(entries) != 0 {
		t.Errorf("root after deleting everything holds %v (%v), want nothing", entries, err)
	}
	// The root itself stays and works.
	mustPut(t, s, "c", []byte("c"), PutOptions{})
}

// TestFSSymlinkEscape plants a symlink to a folder outside the root: the
// store must neither read nor write through it.
func TestFSSymlinkEscape(t *testing.T) {
	s, parent := newTestFS(t)
	outside := filepath.Join(parent, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(s.Dir(), "evil")); err != nil {
		t.Skipf("no symlinks: %v", err)
	}
	if rc, _, err := s.Get(t.Context(), "evil/secret", nil); err == nil {
		data, _ := io.ReadAll(rc)
		rc.Close()
		t.Errorf("Get through a symlink out of the root returned %q", data)
	}
	if _, err := s.Put(t.Context(), "evil/planted", strings.NewReader("x"), PutOptions{}); err == nil {
		t.Errorf("Put through a symlink out of the root succeeded")
	}
	if err := s.Delete(t.Context(), "evil/secret"); err == nil {
		if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
			t.Errorf("Delete through a symlink removed a file outside the root")
		}
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside folder holds %d entries, want just the secret", len(entries))
	}
	if got := listKeys(t, s, ""); len(got) != 0 {
		t.Errorf("List = %q, want nothing (symlinks are not objects)", got)
	}
}

// TestFSFileFolderClash: a folder store cannot hold "a/b" and "a/b/c".
func TestFSFileFolderClash(t *testing.T) {
	s, parent := newTestFS(t)
	mustPut(t, s, "a/b", []byte("file"), PutOptions{})
	if _, err := s.Put(t.Context(), "a/b/c", strings.NewReader("x"), PutOptions{}); err == nil {
		t.Errorf("Put(a/b/c) over the file a/b succeeded")
	}
	mustPut(t, s, "x/y/z", []byte("z"), PutOptions{})
	if _, err := s.Put(t.Context(), "x/y", strings.NewReader("x"), PutOptions{}); err == nil {
		t.Errorf("Put(x/y) over the folder x/y succeeded")
	}
	if got := listKeys(t, s, ""); !slices.Equal(got, []string{"a/b", "x/y/z"}) {
		t.Errorf("List = %q, want [a/b x/y/z]", got)
	}
	if left := fsLeftovers(t, s, parent); len(left) > 0 {
		t.Errorf("leftovers: %q", left)
	}
}

func TestNewFSErrors(t *testing.T) {
	if _, err := NewFS(""); err == nil {
		t.Errorf("NewFS(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := NewFS(file); err == nil {
		t.Errorf("NewFS(a file) succeeded")
	}
	s, _ := newTestFS(t)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// FuzzValidateKey: ValidateKey never panics, and a key it accepts maps to a
// file name that stays under any root.
func FuzzValidateKey(f *testing.F) {
	for _, tc := range badKeys {
		f.Add(tc.key)
	}
	for _, k := range []string{"a", "a/b", "artists/1/albums/2/songs/3/v1/aac_128.mp4", "a..b/c", "..a", "a/...", "a b/c", "ä/ö"} {
		f.Add(k)
	}
	root := filepath.Join(string(filepath.Separator)+"srv", "riff", "blobs")
	f.Fuzz(func(t *testing.T, key string) {
		err := ValidateKey(key)
		if ValidatePrefix(key) != nil && err == nil {
			t.Errorf("ValidatePrefix(%q) refused a valid key", key)
		}
		name, nerr := objectName(key)
		if (err == nil) != (nerr == nil) {
			t.Fatalf("ValidateKey(%q) = %v but objectName error = %v", key, err, nerr)
		}
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ValidateKey(%q) error %v does not wrap ErrInvalidKey", key, err)
			}
			return
		}
		joined := filepath.Join(root, name)
		rel, rerr := filepath.Rel(root, joined)
		if !strings.HasPrefix(joined, root+string(filepath.Separator)) || rerr != nil || !filepath.IsLocal(rel) || filepath.ToSlash(rel) != key {
			t.Errorf("key %q joins to %q, outside %q or not the same path", key, joined, root)
		}
	})
}

func BenchmarkFSGetRange(b *testing.B) {
	s, _ := newTestFS(b)
	key := "artists/1/albums/2/songs/3/v1/aac_320.mp4"
	const size, span = 10 * MiB, 1 * MiB
	if _, err := s.Put(b.Context(), key, bytes.NewReader(content(9, size)), PutOptions{}); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	b.SetBytes(span)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		rng := Range{Off: (i * span) % (size - span), Len: span}
		i++
		rc, _, err := s.Get(b.Context(), key, &rng)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{rc}, buf)
		rc.Close()
		if err != nil || n != span {
			b.Fatalf("read %d bytes, %v", n, err)
		}
	}
}
