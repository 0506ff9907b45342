package cache

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// NewSlab makes a Slab of n slots of slotBytes each. The memory is
// reserved, not touched: pages are allocated as slots are first written.
// It fails when the memory file cannot be made, or when the kernel cannot
// punch holes in it or would back it with huge pages regardless of
// MADV_NOHUGEPAGE (shmem_enabled "force"): then reusing a slot could not be
// made safe (see Slab), and the caller keeps slices on the heap.
func NewSlab(n int, slotBytes int64) (*Slab, error) {
	if n <= 0 || slotBytes <= 0 {
		return nil, fmt.Errorf("cache: slab of %d slots of %d bytes", n, slotBytes)
	}
	page := int64(os.Getpagesize())
	stride := (slotBytes + page - 1) / page * page
	if folio := maxShmemFolio(thpDir); folio > page && stride%folio != 0 {
		return nil, fmt.Errorf("cache: the kernel may back a memfd with %d KiB folios (%s/*/shmem_enabled): slots of %d bytes could not be punched out whole", folio>>10, thpDir, slotBytes)
	}
	size := int64(n) * stride
	fd, err := unix.MemfdCreate("riff-edge-slices", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("cache: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, size); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cache: ftruncate memfd: %w", err)
	}
	punch := func(off, n int64) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	}
	if err := punch(0, stride); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cache: memfd cannot punch holes: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("cache: mmap memfd: %w", err)
	}
	// Reads through the mapping take small pages too (a huge page would
	// span slots).
	if err := unix.Madvise(mem, unix.MADV_NOHUGEPAGE); err != nil {
		unix.Munmap(mem)
		unix.Close(fd)
		return nil, fmt.Errorf("cache: madvise memfd: %w", err)
	}
	write := func(b []byte, off int64) error {
		for len(b) > 0 {
			n, err := unix.Pwrite(fd, b, off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return err
			}
			if n == 0 {
				return io.ErrShortWrite
			}
			b, off = b[n:], off+int64(n)
		}
		return nil
	}
	s := &Slab{
		fd: fd, mem: mem, slotBytes: slotBytes, stride: stride,
		refs: make([]atomic.Int32, n), gens: make([]atomic.Uint32, n), free: make([]int32, n),
		punch: punch, write: write,
	}
	for i := range s.free {
		s.free[i] = int32(n - 1 - i)
	}
	return s, nil
}

const thpDir = "/sys/kernel/mm/transparent_hugepage"

// maxShmemFolio returns the largest folio, in bytes, the kernel may use for
// a memfd written with pwrite (no mapping, so madvise has no say): 0 when
// transparent huge pages are off for shmem. A size is possible when its
// shmem_enabled says always, within_size or force, or inherit while the
// global setting says one of those; the global setting covers the PMD size.
func maxShmemFolio(dir string) int64 {
	selected := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			return ""
		}
		if _, rest, ok := bytes.Cut(b, []byte("[")); ok {
			if mode, _, ok := bytes.Cut(rest, []byte("]")); ok {
				return string(mode)
			}
		}
		return ""
	}
	huge := func(mode string) bool { return mode == "always" || mode == "within_size" || mode == "force" }
	global := selected(dir + "/shmem_enabled")
	var largest int64
	if huge(global) {
		if b, err := os.ReadFile(dir + "/hpage_pmd_size"); err == nil {
			if n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64); err == nil {
				largest = n
			}
		}
		if largest == 0 {
			largest = 2 << 20
		}
	}
	sizes, _ := filepath.Glob(dir + "/hugepages-*kB")
	for _, d := range sizes {
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(d), "hugepages-"), "kB"), 10, 64)
		if err != nil {
			continue
		}
		mode := selected(d + "/shmem_enabled")
		if huge(mode) || mode == "inherit" && huge(global) {
			largest = max(largest, kb<<10)
		}
	}
	return largest
}

// Close unmaps and closes the memory file. No slot may be in use.
func (s *Slab) Close() error {
	err := unix.Munmap(s.mem)
	if cerr := unix.Close(s.fd); err == nil {
		err = cerr
	}
	return err
}
