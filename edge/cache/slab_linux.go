package cache

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// NewSlab makes a Slab of n slots of slotBytes each. The memory is
// reserved, not touched: pages are allocated as slots are first written.
func NewSlab(n int, slotBytes int64) (*Slab, error) {
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
	s := &Slab{fd: fd, mem: mem, slotBytes: slotBytes, refs: make([]atomic.Int32, n), gens: make([]atomic.Uint32, n), free: make([]int32, n)}
	for i := range s.free {
		s.free[i] = int32(n - 1 - i)
	}
	return s, nil
}

// Close unmaps and closes the memory file. No slot may be in use.
func (s *Slab) Close() error {
	err := unix.Munmap(s.mem)
	if cerr := unix.Close(s.fd); err == nil {
		err = cerr
	}
	return err
}
