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
// user memory that write makes (see docs/performance.md).
//
// # Who may still see a slot's pages
//
// Slots are reference counted. The cache holds one reference from Alloc
// until the entry leaves ristretto; a response holds one from Acquire until
// its body is sent. Each Alloc gives the slot a new generation, and Acquire
// checks it: an entry whose slot was freed and taken by another entry in the
// meantime is refused, not read with someone else's bytes.
//
// References are not the whole story. sendfile does not copy: it queues
// references to the file's pages in the socket, and returns as soon as they
// are queued, long before a slow client has read them. A body is "sent",
// and lets go of its slot, while the kernel still holds the slot's pages.
// Writing new bytes into those same pages would change what the slow
// client receives (it did: a HIT carried another song's bytes). So a slot
// that was used before is never written in place: Alloc first punches it
// out of the file (fallocate PUNCH_HOLE), which detaches its pages from the
// file — a page a socket still holds stays alive, unchanged, until the
// socket lets go of it — and the new slice is written into fresh pages
// with pwrite (writing through the mapping instead would fault every page
// in and zero it first: 10–20× slower, see docs/performance.md). Slots
// start on page boundaries and are whole pages long, and NewSlab refuses a
// kernel that may back the file with folios larger than a slot's
// alignment, so a punch never zeroes part of a page (or folio) in place.
// The cost, about 170 µs per MiB filled, is paid once per fill, on the
// miss path: the hit path is unchanged.
//
// A Slab is safe for concurrent use.
type Slab struct {
	fd        int
	mem       []byte
	slotBytes int64 // usable bytes of a slot
	stride    int64 // slotBytes rounded up to whole pages
	refs      []atomic.Int32
	gens      []atomic.Uint32
	punch     func(off, n int64) error        // detach [off, off+n) from the file
	write     func(b []byte, off int64) error // write b at off, into the file

	mu     sync.Mutex
	free   []int32
	used   atomic.Int64
	lost   atomic.Int64 // slots retired because a punch failed
	punchN atomic.Int64 // punches made
}

// Slots returns the number of slots and those in use.
func (s *Slab) Slots() (total, used int) { return len(s.refs), int(s.used.Load()) }

// Refs returns the references slot i holds now (0: free), for tests and
// diagnostics.
func (s *Slab) Refs(i int32) int32 { return s.refs[i].Load() }

// Punches returns how many slots were punched out for reuse, and how many
// were retired because punching failed (they are never reused).
func (s *Slab) Punches() (punched, retired int64) { return s.punchN.Load(), s.lost.Load() }

// SlotBytes returns the size of a slot.
func (s *Slab) SlotBytes() int64 { return s.slotBytes }

// FD returns the memory file's descriptor, for sendfile.
func (s *Slab) FD() int { return s.fd }

// Offset returns the file offset of slot i.
func (s *Slab) Offset(i int32) int64 { return int64(i) * s.stride }

// Alloc takes a free slot, writes data into it and returns the slot, with
// one reference (the caller's), its new generation and its bytes. The bytes
// are in fresh pages that no socket has seen (see Slab). It reports false
// when no slot is free, data does not fit in a slot, or the write failed.
func (s *Slab) Alloc(data []byte) (slot int32, gen uint32, mem []byte, ok bool) {
	if int64(len(data)) > s.slotBytes {
		return -1, 0, nil, false
	}
	for {
		s.mu.Lock()
		n := len(s.free)
		if n == 0 {
			s.mu.Unlock()
			return -1, 0, nil, false
		}
		i := s.free[n-1]
		s.free = s.free[:n-1]
		s.mu.Unlock()
		off := s.Offset(i)
		if s.gens[i].Load() != 0 { // used before: its pages may be in a socket
			if err := s.punch(off, s.stride); err != nil {
				// Writing in place could change bytes a client is still
				// reading: retire the slot instead.
				s.lost.Add(1)
				continue
			}
			s.punchN.Add(1)
		}
		if err := s.write(data, off); err != nil {
			s.mu.Lock()
			s.free = append(s.free, i)
			s.mu.Unlock()
			return -1, 0, nil, false
		}
		gen = s.gens[i].Add(1)
		s.refs[i].Store(1)
		s.used.Add(1)
		return i, gen, s.mem[off : off+int64(len(data)) : off+int64(len(data))], true
	}
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
