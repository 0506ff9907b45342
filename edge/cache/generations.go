package cache

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"riff/internal/blobkey"
)

// ErrPrefix is returned by Generations.Bump for a prefix that is not a
// purgeable folder.
var ErrPrefix = errors.New("cache: purge prefix must be empty or a folder of 2, 4 or 6 segments ending in /")

// Generations tracks the purge generation of every folder that was ever
// purged. The zero value is not usable; call NewGenerations. Generations is
// safe for concurrent use; Of takes a read lock only once some folder has
// been purged.
type Generations struct {
	seq   atomic.Uint64 // last sequence number handed out
	floor atomic.Uint64 // generation of "everything"
	n     atomic.Int64  // len(m), read without the lock

	mu sync.RWMutex
	m  map[string]uint64 // folder prefix ("artists/1/") → generation
}

// NewGenerations returns a Generations in which nothing was purged.
func NewGenerations() *Generations {
	return &Generations{m: make(map[string]uint64)}
}

// Of returns the generation of the object key: the largest generation of
// the folders it is in, and of the whole cache. It does not allocate.
func (g *Generations) Of(key []byte) uint64 {
	gen := g.floor.Load()
	if g.n.Load() == 0 {
		return gen
	}
	g.mu.RLock()
	for _, n := range blobkey.PurgeFolders(key) {
		if n == 0 {
			break
		}
		if v, ok := g.m[string(key[:n])]; ok && v > gen {
			gen = v
		}
	}
	g.mu.RUnlock()
	return gen
}

// Bump purges prefix: every object below it gets a new, larger generation.
// The empty prefix purges everything. Any other prefix must be a folder (it
// ends in "/") of 2, 4 or 6 segments, otherwise Bump returns ErrPrefix. Bump
// returns the new generation; it is in effect for every Of that starts after
// Bump returns.
func (g *Generations) Bump(prefix string) (uint64, error) {
	if prefix == "" {
		gen := g.seq.Add(1)
		g.floor.Store(gen)
		return gen, nil
	}
	if !PurgeablePrefix(prefix) {
		return 0, ErrPrefix
	}
	g.mu.Lock()
	gen := g.seq.Add(1)
	g.m[prefix] = gen
	g.n.Store(int64(len(g.m)))
	g.mu.Unlock()
	return gen, nil
}

// PurgeablePrefix reports whether prefix names a folder that carries a
// generation (blobkey.IsPurgeFolder): non-empty segments, ending in "/", at
// depth 2, 4 or 6 (the artist, album and song folders). It does not
// otherwise judge the segments; callers validate keys.
func PurgeablePrefix(prefix string) bool { return blobkey.IsPurgeFolder(prefix) }

// RestoreGenerations returns Generations as they were persisted: seq is the
// largest generation handed out (the next Bump takes a larger one), floor
// the generation of everything, prefixes those of purged folders. A prefix
// that is not a purgeable folder is an error.
func RestoreGenerations(seq, floor uint64, prefixes map[string]uint64) (*Generations, error) {
	g := NewGenerations()
	seq = max(seq, floor)
	for p, gen := range prefixes {
		if !PurgeablePrefix(p) {
			return nil, fmt.Errorf("cache: restoring generations: %q is not a purgeable folder", p)
		}
		g.m[p] = gen
		seq = max(seq, gen)
	}
	g.seq.Store(seq)
	g.floor.Store(floor)
	g.n.Store(int64(len(g.m)))
	return g, nil
}
