package cache

import (
	"errors"
	"hash/maphash"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Kind says what an entry holds.
type Kind uint8

const (
	// KindMeta is an object's metadata (Entry.Meta; index 0).
	KindMeta Kind = iota + 1
	// KindSlice is one fixed-size slice of a media object (index = slice
	// number; the last slice of an object may be short).
	KindSlice
	// KindWhole is a whole small object, such as a playlist (index 0).
	KindWhole
	// KindFiltered is a playlist filtered for one bitrate ceiling (index =
	// the ceiling in kbps).
	KindFiltered
	// KindMissing records that the origin had no such object (index 0,
	// no data): negative caching, always with a TTL (SetTTL).
	KindMissing
)

// Meta describes an object as its origin did.
type Meta struct {
	Size         int64
	ETag         string // quoted, as the origin sent it
	ContentType  string
	LastModified string    // HTTP-date as the origin sent it, or ""
	Modified     time.Time // LastModified parsed, or zero
}

// Entry is a cached value. Entries are immutable once stored: never modify
// Data or Meta of an entry that came from Get, and never modify what was
// passed to Set afterwards.
type Entry struct {
	// Data holds the bytes of a slice, whole object or filtered playlist.
	Data []byte
	// Meta describes the object the data came from (for KindMeta, the
	// object itself).
	Meta *Meta

	slot    int32  // Slab slot holding Data, plus one; 0: Data is on the heap
	slotGen uint32 // the slot's generation (Slab.Acquire)
	h2      uint64
	gen     uint64
	idx     int64
	kind    Kind
}

// Slot returns the Slab slot that holds e.Data and its generation, if the
// data is in one. Such data may be read only while a reference to the slot
// is held: see Slab.Acquire.
func (e *Entry) Slot() (slot int32, gen uint32, ok bool) { return e.slot - 1, e.slotGen, e.slot > 0 }

// Config tunes a Cache.
type Config struct {
	// MaxBytes is the budget: the total cost of the entries, which is
	// their size in bytes plus a small fixed overhead each.
	MaxBytes int64
	// AvgEntryBytes is the expected mean entry size, used to size
	// ristretto's admission counters (10 per expected entry). Default
	// 64 KiB.
	AvgEntryBytes int64
	// SmallBytes is the part of MaxBytes kept for everything that is not
	// a slice — objects' metadata, playlists, filtered playlists, negative
	// entries — in a cache of their own, so that slices cannot evict them
	// (default: MaxBytes/16, at least 1 MiB, at most MaxBytes/2).
	SmallBytes int64
	// SlabSlotBytes, when positive, keeps slices of up to that many bytes
	// in a Slab of MaxBytes/SlabSlotBytes slots instead of on the Go heap
	// (see SliceEntry). Where the platform has no Slab, or it is full,
	// slices stay on the heap.
	SlabSlotBytes int64

	// SlabLend lets the slab lend its pages to the kernel (Slab.Lend)
	// when the host makes that safe.
	SlabLend bool
}

// entryOverhead approximates what an entry costs beyond its data: the
// Entry, the ristretto item and the map slot.
const entryOverhead = 160

// Cache is a byte-budgeted cache of object slices, whole objects and
// metadata, named by object key, generation, kind and index. Gets never
// allocate. Sets go through ristretto's buffers and admission policy, so a
// Set may be dropped or refused; Wait makes the Sets that were accepted
// visible. Cache is safe for concurrent use.
//
// Slices and the rest live in two ristretto caches with budgets of their
// own (Config.SmallBytes), like nginx's keys zone beside its cache: a
// slice's admission evicts by sampling, whatever the victims' size, so in
// one cache a 1 MiB slice evicted dozens of small entries as cold as it
// is, and under slice churn every playlist and every object's metadata
// went back to the origin (measured: 7 % of answers were origin fetches
// with a disk tier holding every slice).
type Cache struct {
	rc    *ristretto.Cache[uint64, *Entry] // slices
	small *ristretto.Cache[uint64, *Entry] // metadata, playlists, negative entries
	gens  *Generations
	slab  *Slab // nil: slices on the heap
	seed1 maphash.Seed
	seed2 maphash.Seed
}

// New returns a Cache with budget cfg.MaxBytes whose names take their
// generations from gens.
func New(cfg Config, gens *Generations) (*Cache, error) {
	if cfg.MaxBytes <= 0 {
		return nil, errors.New("cache: MaxBytes must be positive")
	}
	if gens == nil {
		return nil, errors.New("cache: nil Generations")
	}
	avg := cfg.AvgEntryBytes
	if avg <= 0 {
		avg = 64 << 10
	}
	small := cfg.SmallBytes
	if small <= 0 {
		small = max(cfg.MaxBytes/16, 1<<20)
	}
	small = min(small, cfg.MaxBytes/2)
	sliceBytes := cfg.MaxBytes - small
	if small <= 0 || sliceBytes <= 0 {
		return nil, errors.New("cache: MaxBytes too small to split between slices and the rest")
	}
	counters := 10 * (sliceBytes/avg + 1)
	counters = max(counters, 1000)
	var slab *Slab
	if cfg.SlabSlotBytes > 0 && sliceBytes/cfg.SlabSlotBytes > 0 {
		var err error
		if slab, err = NewSlab(int(sliceBytes/cfg.SlabSlotBytes), cfg.SlabSlotBytes, cfg.SlabLend); err != nil && err != ErrNoSlab {
			return nil, err
		}
	}
	// Small entries: ~4 KiB each (metadata ~0.3 KiB, playlists 1–8 KiB).
	sc, err := ristretto.NewCache(&ristretto.Config[uint64, *Entry]{
		NumCounters:        max(10*(small/(4<<10)+1), 1000),
		MaxCost:            small,
		BufferItems:        64,
		Metrics:            true,
		IgnoreInternalCost: true,
		KeyToHash:          func(k uint64) (uint64, uint64) { return k, 0 },
	})
	if err != nil {
		if slab != nil {
			slab.Close()
		}
		return nil, err
	}
	rc, err := ristretto.NewCache(&ristretto.Config[uint64, *Entry]{
		NumCounters:        counters,
		MaxCost:            sliceBytes,
		BufferItems:        64,
		Metrics:            true,
		IgnoreInternalCost: true, // entryOverhead is added to the cost instead
		KeyToHash:          func(k uint64) (uint64, uint64) { return k, 0 },
		// Whenever an entry leaves (evicted, refused, replaced), the
		// cache's reference to its slot goes with it.
		OnExit: func(e *Entry) {
			if slot, ok := e.slotOf(); ok && slab != nil {
				slab.Release(slot)
			}
		},
	})
	if err != nil {
		sc.Close()
		if slab != nil {
			slab.Close()
		}
		return nil, err
	}
	return &Cache{rc: rc, small: sc, gens: gens, slab: slab, seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}, nil
}

// of returns the ristretto cache that holds entries of kind.
func (c *Cache) of(kind Kind) *ristretto.Cache[uint64, *Entry] {
	if kind == KindSlice {
		return c.rc
	}
	return c.small
}

func (e *Entry) slotOf() (int32, bool) {
	if e == nil || e.slot <= 0 {
		return 0, false
	}
	return e.slot - 1, true
}

// Slab returns the cache's slab, or nil when slices live on the heap.
func (c *Cache) Slab() *Slab { return c.slab }

// SliceEntry returns an entry for a slice whose bytes are data: copied
// into a Slab slot when there is a free one big enough, else data itself,
// which the entry then owns. Pass it to Set (which takes over the slot
// reference) or drop it with Discard.
func (c *Cache) SliceEntry(data []byte, meta *Meta) *Entry {
	if c.slab != nil && int64(len(data)) <= c.slab.SlotBytes() {
		if slot, gen, mem, ok := c.slab.Alloc(data); ok {
			return &Entry{Data: mem, Meta: meta, slot: slot + 1, slotGen: gen}
		}
	}
	return &Entry{Data: data, Meta: meta}
}

// Discard releases what an entry that was never Set holds.
func (c *Cache) Discard(e *Entry) {
	if slot, ok := e.slotOf(); ok {
		c.slab.Release(slot)
	}
}

// Name identifies an object at its current generation. It is a small value
// made without allocating; get one from Cache.Name for each request.
type Name struct {
	h1, h2 uint64
	gen    uint64
}

// Gen returns the generation the name was made at.
func (n Name) Gen() uint64 { return n.gen }

// Name names the object key at its current generation.
func (c *Cache) Name(key []byte) Name {
	return Name{
		h1:  maphash.Bytes(c.seed1, key),
		h2:  maphash.Bytes(c.seed2, key),
		gen: c.gens.Of(key),
	}
}

// NameAt names the object key at generation gen (a name taken earlier,
// for a fetch that must store under the generation it started with).
func (c *Cache) NameAt(key string, gen uint64) Name {
	return Name{
		h1:  maphash.String(c.seed1, key),
		h2:  maphash.String(c.seed2, key),
		gen: gen,
	}
}

// hashKey mixes a name with kind and index into the ristretto key.
func hashKey(n Name, kind Kind, idx int64) uint64 {
	x := n.h1 ^ mix(n.gen+0x9e3779b97f4a7c15*uint64(kind)) ^ mix(uint64(idx)^0xd6e8feb86659fd93)
	return mix(x)
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Get returns the entry of kind and index for the named object.
func (c *Cache) Get(n Name, kind Kind, idx int64) (*Entry, bool) {
	e, ok := c.of(kind).Get(hashKey(n, kind, idx))
	if !ok || e == nil || e.h2 != n.h2 || e.gen != n.gen || e.kind != kind || e.idx != idx {
		return nil, false
	}
	return e, true
}

// Has reports whether Get would find the entry. ristretto has no peek, so
// this counts as an access like Get does.
func (c *Cache) Has(n Name, kind Kind, idx int64) bool {
	_, ok := c.Get(n, kind, idx)
	return ok
}

// Set stores e as the entry of kind and index for the named object and
// reports whether ristretto accepted it into its buffers (it may still
// refuse it later). e must not be modified afterwards; its slot reference,
// if any, now belongs to the cache.
func (c *Cache) Set(n Name, kind Kind, idx int64, e *Entry) bool {
	return c.SetTTL(n, kind, idx, e, 0)
}

// SetTTL is Set for an entry that expires after ttl (0: never).
func (c *Cache) SetTTL(n Name, kind Kind, idx int64, e *Entry, ttl time.Duration) bool {
	e.h2, e.gen, e.kind, e.idx = n.h2, n.gen, kind, idx
	cost := int64(len(e.Data)) + entryOverhead
	if kind == KindMeta && e.Meta != nil {
		cost += int64(len(e.Meta.ETag) + len(e.Meta.ContentType) + len(e.Meta.LastModified))
	}
	if !c.of(kind).SetWithTTL(hashKey(n, kind, idx), e, cost, ttl) {
		c.Discard(e) // dropped before ristretto saw it: no OnExit will come
		return false
	}
	return true
}

// Wait blocks until every Set made before it was applied (or refused).
func (c *Cache) Wait() {
	c.rc.Wait()
	c.small.Wait()
}

// Close stops the cache's goroutines and frees the slab. The Cache must not
// be used after, and no slot may still be referenced.
func (c *Cache) Close() {
	c.rc.Close()
	c.small.Close()
	if c.slab != nil {
		c.slab.Close()
	}
}

// Stats are counters and sizes of a Cache, for metrics.
type Stats struct {
	Hits, Misses           uint64
	KeysAdded, KeysEvicted uint64
	CostAdded, CostEvicted uint64
	SetsDropped            uint64
	SetsRejected           uint64
	MaxCost, UsedCost      int64
	SlabSlots, SlabUsed    int // slots of the slab (0 without one), in use
}

// Stats returns the cache's counters since it was made: the slices' and
// the small entries' caches together.
func (c *Cache) Stats() Stats {
	var slots, used int
	if c.slab != nil {
		slots, used = c.slab.Slots()
	}
	st := Stats{SlabSlots: slots, SlabUsed: used}
	for _, rc := range []*ristretto.Cache[uint64, *Entry]{c.rc, c.small} {
		m := rc.Metrics
		st.Hits += m.Hits()
		st.Misses += m.Misses()
		st.KeysAdded += m.KeysAdded()
		st.KeysEvicted += m.KeysEvicted()
		st.CostAdded += m.CostAdded()
		st.CostEvicted += m.CostEvicted()
		st.SetsDropped += m.SetsDropped()
		st.SetsRejected += m.SetsRejected()
		st.MaxCost += rc.MaxCost()
		st.UsedCost += rc.MaxCost() - rc.RemainingCost()
	}
	return st
}
