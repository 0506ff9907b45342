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
// # Lending pages to the kernel
//
// A response may send a slot with sendfile from the memory file (Lend),
// which leaves references to the slot's pages in the socket after the call
// returns and after the response has let go of the slot: a slow client
// reads them later. Those pages must never be written again. So Alloc
// punches a lent slot out of the file (fallocate PUNCH_HOLE) before it
// fills it: the file gets fresh pages, and the old ones stay with the
// sockets that hold them until the last one is done. Writing a lent slot
// in place is the bug a cached response once showed, 256 of 256 pages of
// other songs (docs/performance.md).
//
// A punch frees only whole folios; a punch across part of a larger folio
// zeroes that part in place, under the sockets. So lending is allowed only
// when every folio the kernel may give the file lies inside one slot: the
// slot size is a multiple of the largest shmem folio the host's
// transparent huge page settings allow (NewSlab reads them; Lending
// reports the outcome). Otherwise responses copy (writev) while they hold
// their reference, and slots are written in place.
//
// A Slab is safe for concurrent use.
type Slab struct {
	fd        int
	mem       []byte
	slotBytes int64
	refs      []atomic.Int32
	gens      []atomic.Uint32
	lent      []atomic.Bool // pages handed to the kernel since the last Alloc
	lending   Lending

	mu   sync.Mutex
	free []int32
	used atomic.Int64
}

// Lending is what NewSlab decided about lending pages to the kernel.
type Lending struct {
	On         bool   // responses may send slots by reference (Lend)
	FolioBytes int64  // the largest folio the memory file may get
	Advised    bool   // the mapping asks for huge pages (MADV_HUGEPAGE)
	Why        string // when !On: the reason
}

// Slots returns the number of slots and those in use.
func (s *Slab) Slots() (total, used int) { return len(s.refs), int(s.used.Load()) }

// Refs returns the references slot i holds now (0: free), for tests and
// diagnostics.
func (s *Slab) Refs(i int32) int32 { return s.refs[i].Load() }

// SlotBytes returns the size of a slot.
func (s *Slab) SlotBytes() int64 { return s.slotBytes }

// Lending reports whether slots may be lent to the kernel, and why.
func (s *Slab) Lending() Lending { return s.lending }

// Lend marks slot i as lent to the kernel and returns the memory file and
// the slot's offset in it, for sendfile. The caller holds a reference to
// the slot, and Lending().On is true.
func (s *Slab) Lend(i int32) (fd int, off int64) {
	if !s.lending.On {
		panic("cache: Lend on a slab that does not lend")
	}
	s.lent[i].Store(true)
	return s.fd, s.offset(i)
}

func (s *Slab) offset(i int32) int64 { return int64(i) * s.slotBytes }

// Alloc takes a free slot, copies data into it and returns the slot, with
// one reference (the caller's), its new generation and its bytes. It
// reports false when no slot is free, data does not fit in one, or a lent
// slot could not be given fresh pages.
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
	if s.lent[i].Load() {
		// Free: nobody in this process refers to the slot, so nobody can
		// lend it again meanwhile.
		if err := s.refill(i, data); err != nil {
			s.mu.Lock()
			s.free = append(s.free, i)
			s.mu.Unlock()
			return -1, 0, nil, false
		}
		s.lent[i].Store(false)
	} else {
		copy(mem, data)
	}
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
