package ingest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Spool is one catalogd's folder for temporary work: uploads while they
// are checked, originals fetched for ffmpeg, the packager's encodes. It
// lives under a base folder (-upload-dir) that several catalogds may
// share: each works in a folder of its own, "work-*", holding an exclusive
// lock (flock) on its "lock" file for as long as the process lives. The
// kernel drops the lock when the process dies, however it dies, so
// OpenSpool can tell what a crashed or killed catalogd left behind and
// remove it.
type Spool struct {
	Dir  string // this process's work folder
	lock *os.File
}

const (
	spoolPrefix = "work-"
	spoolLock   = "lock"
	// spoolGrace keeps a work folder without a lock file (its owner is
	// between making it and locking it) for a while.
	spoolGrace = time.Minute
)

// OpenSpool makes base if needed, removes the work folders no live
// process holds, and makes and locks a work folder of its own. It returns
// how many leftover folders it removed. (Where flock is missing, nothing
// is locked or swept.)
func OpenSpool(base string) (*Spool, int, error) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, 0, fmt.Errorf("spool: %w", err)
	}
	removed, err := sweepSpool(base)
	if err != nil {
		return nil, removed, err
	}
	dir, err := os.MkdirTemp(base, spoolPrefix)
	if err != nil {
		return nil, removed, fmt.Errorf("spool: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, spoolLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		os.RemoveAll(dir)
		return nil, removed, fmt.Errorf("spool: %w", err)
	}
	if ok, err := tryLock(f); canLock && (!ok || err != nil) {
		f.Close()
		os.RemoveAll(dir)
		return nil, removed, fmt.Errorf("spool: cannot lock %s: %v", dir, err)
	}
	return &Spool{Dir: dir, lock: f}, removed, nil
}

// sweepSpool removes what dead processes left in base.
func sweepSpool(base string) (int, error) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	removed := 0
	for _, e := range ents {
		name, path := e.Name(), filepath.Join(base, e.Name())
		if e.IsDir() && strings.HasPrefix(name, spoolPrefix) && stale(path) && os.RemoveAll(path) == nil {
			removed++
		}
	}
	return removed, nil
}

// stale reports whether no live process holds the work folder dir.
func stale(dir string) bool {
	if !canLock {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, spoolLock), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		info, err := os.Stat(dir)
		return err == nil && time.Since(info.ModTime()) > spoolGrace
	}
	if err != nil {
		return false
	}
	defer f.Close()
	ok, err := tryLock(f)
	return ok && err == nil // closing f drops the lock we just took
}

// Close removes the work folder and drops its lock. It is idempotent.
func (s *Spool) Close() error {
	if s == nil || s.lock == nil {
		return nil
	}
	err := os.RemoveAll(s.Dir)
	s.lock.Close()
	s.lock = nil
	return err
}
