//go:build !linux

package cache

// NewSlab returns ErrNoSlab: only Linux has memfd.
func NewSlab(n int, slotBytes int64, lend bool) (*Slab, error) { return nil, ErrNoSlab }

// Close does nothing.
func (s *Slab) Close() error { return nil }

func (s *Slab) refill(i int32, data []byte) error { return ErrNoSlab }
