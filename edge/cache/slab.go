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
// memfd) mapped into the process: the cache's bytes live outside the Go
// heap, so a cache of many GiB costs the garbage collector nothing and its
// memory is exactly the budget (heap slices would let the heap grow to
// twice the budget between collections).
//
// Slots are reference counted. The cache holds one reference from Alloc
// until the entry leaves ristretto; a response holds one from Acquire until
// its body is closed. A slot is reused only when both are gone. Each Alloc
// also gives the slot a new generation, and Acquire checks it: an entry
// whose slot was freed and taken by another entry in the meantime is
// refused, not read with someone else's bytes.
//
// # Readers must copy before they let go
//
// Alloc writes a reused slot in place, so a reference must cover the whole
// time anyone reads the slot's bytes, the kernel included. Responses copy
// the bytes into the socket (writev) while they hold their reference.
// Never hand a slot's pages to the kernel by reference — sendfile or splice
// from the memory file, vmsplice, MSG_ZEROCOPY —: those calls return while
// the socket still refers to the pages, and a slot rewritten after the
// response let go changes what a slow client receives. That happened: a
// cached response carried 256 of 256 pages of other songs (see
// docs/performance.md, which also has the numbers of the zero-copy design
// that punched slots out of the file before reuse, and why copying won).
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

// Refs returns the references slot i holds now (0: free), for tests and
// diagnostics.
func (s *Slab) Refs(i int32) int32 { return s.refs[i].Load() }

// SlotBytes returns the size of a slot.
func (s *Slab) SlotBytes() int64 { return s.slotBytes }

func (s *Slab) offset(i int32) int64 { return int64(i) * s.slotBytes }

// Alloc takes a free slot, copies data into it and returns the slot, with
// one reference (the caller's), its new generation and its bytes. It
// reports false when no slot is free or data does not fit in one.
func (s *Slab) Alloc(data []byte) (slot int32, gen uint32, mem []byte, ok bool) {
	if int64(len(data)) > s.slotBytes {
		return -1, 0, nil, false
	}
	s.mu.Lock()
	n := len(s.free)
	if n == 0 {
		s.mu.Unlock()
		return -1, 0, nil, false
	}
	i := s.free[n-1]
	s.free = s.free[:n-1]
	s.mu.Unlock()
	off := s.offset(i)
	mem = s.mem[off : off+int64(len(data)) : off+int64(len(data))]
	copy(mem, data)
	gen = s.gens[i].Add(1)
	s.refs[i].Store(1)
	s.used.Add(1)
	return i, gen, mem, true
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
