package cache

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrNoSlab: the platform has no memfd (the cache then keeps slices on the
// Go heap).
var ErrNoSlab = errors.New("cache: slab needs Linux memfd")

// Slab holds media slices in fixed-size slots of one memory file (a Linux
// memfd), mapped into the process. A slot's bytes are an ordinary []byte
// for the code that reads them, and, because they live in a file, the
// kernel can send them to a socket with sendfile, without the copy from
// user memory that write makes (the largest single cost of serving a warm
// range: see docs/performance.md).
//
// Slots are reference counted. The cache holds one reference from Alloc
// until the entry leaves ristretto; a response holds one from Acquire until
// its body is sent. A slot is reused only when both are gone, so bytes
// never change under a response that is still sending them. Each Alloc
// also gives the slot a new generation, and Acquire checks it: an entry
// whose slot was freed and taken by another entry in the meantime is
// refused, not read with someone else's bytes.
//
// A Slab is safe for concurrent use.
type Slab struct {
	fd        int
	mem       []byte
	slotBytes int64
	refs      []atomic.Int32
	gens      []atomic.Uint32

	mu   sync.Mutex
	free []int32
	used atomic.Int64
}

// Slots returns the number of slots and those in use.
func (s *Slab) Slots() (total, used int) { return len(s.refs), int(s.used.Load()) }

// SlotBytes returns the size of a slot.
func (s *Slab) SlotBytes() int64 { return s.slotBytes }

// FD returns the memory file's descriptor, for sendfile.
func (s *Slab) FD() int { return s.fd }

// Offset returns the file offset of slot i.
func (s *Slab) Offset(i int32) int64 { return int64(i) * s.slotBytes }

// Alloc takes a free slot, with one reference (the caller's), and returns
// it, its new generation and its memory. It reports false when every slot
// is in use.
func (s *Slab) Alloc() (slot int32, gen uint32, mem []byte, ok bool) {
	s.mu.Lock()
	n := len(s.free)
	if n == 0 {
		s.mu.Unlock()
		return -1, 0, nil, false
	}
	i := s.free[n-1]
	s.free = s.free[:n-1]
	s.mu.Unlock()
	gen = s.gens[i].Add(1)
	s.refs[i].Store(1)
	s.used.Add(1)
	off := s.Offset(i)
	return i, gen, s.mem[off : off+s.slotBytes : off+s.slotBytes], true
}

// Acquire takes a reference to slot i if it still holds generation gen,
// and reports whether it did.
func (s *Slab) Acquire(i int32, gen uint32) bool {
	r := &s.refs[i]
	for {
		n := r.Load()
		if n <= 0 {
			return false
		}
		if r.CompareAndSwap(n, n+1) {
			break
		}
	}
	// Held, the slot cannot change hands; is it still the same one?
	if s.gens[i].Load() != gen {
		s.Release(i)
		return false
	}
	return true
}

// Release gives back a reference; the last one frees the slot.
func (s *Slab) Release(i int32) {
	if n := s.refs[i].Add(-1); n > 0 {
		return
	} else if n < 0 {
		panic("cache: slab slot released more often than taken")
	}
	s.used.Add(-1)
	s.mu.Lock()
	s.free = append(s.free, i)
	s.mu.Unlock()
}
