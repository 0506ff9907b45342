package cache

import (
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// thpFolder holds the host's transparent huge page settings.
const thpFolder = "/sys/kernel/mm/transparent_hugepage"

// NewSlab makes a Slab of n slots of slotBytes each. The memory is
// reserved, not touched: pages are allocated as slots are first written.
// With lend, the slab lends its pages to the kernel (Slab.Lend) when the
// host's huge page settings make that safe: it asks for huge pages when
// the largest folio it may then get still divides a slot, and otherwise
// does without them, or does not lend (Slab.Lending says which and why).
func NewSlab(n int, slotBytes int64, lend bool) (*Slab, error) {
	if n <= 0 || slotBytes <= 0 {
		return nil, fmt.Errorf("cache: slab of %d slots of %d bytes", n, slotBytes)
	}
	size := int64(n) * slotBytes
	fd, err := unix.MemfdCreate("riff-edge-slices", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cache: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cache: ftruncate memfd: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cache: mmap memfd: %w", err)
	}
	s := &Slab{fd: fd, mem: mem, slotBytes: slotBytes, refs: make([]atomic.Int32, n), gens: make([]atomic.Uint32, n),
		lent: make([]atomic.Bool, n), free: make([]int32, n)}
	for i := range s.free {
		s.free[i] = int32(n - 1 - i)
	}
	if lend {
		s.lending = decideLending(os.DirFS(thpFolder), int64(os.Getpagesize()), slotBytes)
		if s.lending.Advised {
			if err := unix.Madvise(mem, unix.MADV_HUGEPAGE); err != nil {
				// Without the advice the file gets the unadvised folios,
				// which decideLending found safe too.
				s.lending.Advised = false
				s.lending.FolioBytes, _ = maxShmemFolio(os.DirFS(thpFolder), int64(os.Getpagesize()), false)
			}
		} else if s.lending.On && s.lending.FolioBytes == int64(os.Getpagesize()) {
			// Small pages only: keep the mapping out of huge pages
			// should the host's settings change while the edge runs —
			// no huge folio at a fault, and khugepaged does not
			// collapse the slab's pages (a folio larger than a slot
			// would make a punch zero lent bytes). "force" overrides
			// it.
			unix.Madvise(mem, unix.MADV_NOHUGEPAGE)
		}
	} else {
		s.lending.Why = "not asked to"
	}
	return s, nil
}

// refill gives lent slot i fresh pages and copies data into them. The punch
// takes the old pages out of the file, whole folios only (the slot is a
// multiple of the folio size); sockets keep theirs. With huge folios the
// copy goes through the mapping, whose faults allocate them; pwrite would
// allocate small pages.
func (s *Slab) refill(i int32, data []byte) error {
	off := s.offset(i)
	if err := unix.Fallocate(s.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, s.slotBytes); err != nil {
		return err
	}
	if s.lending.FolioBytes > int64(os.Getpagesize()) {
		copy(s.mem[off:], data)
		return nil
	}
	for len(data) > 0 {
		n, err := unix.Pwrite(s.fd, data, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data, off = data[n:], off+int64(n)
	}
	return nil
}

// Close unmaps and closes the memory file. No slot may be in use.
func (s *Slab) Close() error {
	err := unix.Munmap(s.mem)
	if cerr := unix.Close(s.fd); err == nil {
		err = cerr
	}
	return err
}
