package blob

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"time"
)

// SweepStats counts what Sweep removed.
type SweepStats struct {
	Temps    int // interrupted Puts' temp files
	Sidecars int // sidecars whose object generation is gone
}

// Sweep removes what crashed writers left behind in the store's folder:
// temp files of Puts that never finished and sidecars whose object was
// replaced or deleted without them. Only files last modified more than
// olderThan ago are touched, so Puts in progress — in this process or
// another sharing the folder — are safe as long as olderThan is well above
// the longest Put (an hour is). Objects are never removed. Sweep is safe to
// run concurrently with every other method; run it now and then, e.g. at
// start, by one writer.
func (s *FS) Sweep(ctx context.Context, olderThan time.Duration) (SweepStats, error) {
	var st SweepStats
	cutoff := time.Now().Add(-olderThan)
	err := fs.WalkDir(s.root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walked
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		base := d.Name()
		if d.IsDir() || !d.Type().IsRegular() || !strings.HasPrefix(base, ".") {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			return nil
		}
		name = filepath.FromSlash(name)
		switch {
		case strings.HasPrefix(base, tmpPrefix):
			if s.root.Remove(name) == nil {
				st.Temps++
			}
		case strings.HasPrefix(base, metaPrefix):
			if !s.sidecarLive(name) && s.root.Remove(name) == nil {
				st.Sidecars++
			}
		}
		return nil
	})
	return st, err
}

// sidecarLive reports whether the sidecar file name belongs to the current
// generation of its object (or cannot be read, in which case it is kept).
func (s *FS) sidecarLive(name string) bool {
	b, err := s.root.ReadFile(name)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	var m fsMeta
	if json.Unmarshal(b, &m) != nil || m.Name == "" || strings.ContainsAny(m.Name, `/\`) {
		return false // not one of ours in a readable state: garbage
	}
	obj := filepath.Join(filepath.Dir(name), m.Name)
	fi, err := s.root.Lstat(obj)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	mn, ok := metaName(fi)
	return ok && mn == filepath.Base(name)
}
