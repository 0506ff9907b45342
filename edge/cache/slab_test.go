//go:build linux

package cache

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func newTestSlab(t *testing.T, n int, slot int64) *Slab {
	t.Helper()
	s, err := NewSlab(n, slot, true)
	if err == ErrNoSlab {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSlabSlotsAndReferences(t *testing.T) {
	s := newTestSlab(t, 3, 4096)
	var slots []int32
	var gens []uint32
	for k := range 3 {
		i, gen, mem, ok := s.Alloc(bytes.Repeat([]byte{byte(k)}, 4000))
		if !ok || len(mem) != 4000 || mem[0] != byte(k) {
			t.Fatalf("Alloc = %d, %d bytes, %v", i, len(mem), ok)
		}
		slots = append(slots, i)
		gens = append(gens, gen)
	}
	if _, _, _, ok := s.Alloc([]byte("x")); ok {
		t.Fatal("Alloc succeeded on a full slab")
	}
	if total, used := s.Slots(); total != 3 || used != 3 {
		t.Errorf("Slots() = %d, %d", total, used)
	}
	// A response holds slot 0 while the cache lets go of it: it is not
	// reused until the response is done.
	if !s.Acquire(slots[0], gens[0]) {
		t.Fatal("Acquire of a live slot failed")
	}
	s.Release(slots[0]) // the cache's reference
	if _, _, _, ok := s.Alloc([]byte("x")); ok {
		t.Fatal("a referenced slot was reused")
	}
	s.Release(slots[0]) // the response's
	if s.Acquire(slots[0], gens[0]) {
		t.Fatal("Acquire of a freed slot succeeded")
	}
	i, gen, mem, ok := s.Alloc([]byte("new"))
	if !ok || i != slots[0] || gen == gens[0] || string(mem) != "new" {
		t.Fatalf("Alloc after release = %d gen %d %q, %v; want slot %d back with a new generation", i, gen, mem, ok, slots[0])
	}
	// The slot now belongs to someone else: the old entry cannot take it.
	if s.Acquire(slots[0], gens[0]) {
		t.Fatal("Acquire with a stale generation succeeded")
	}
	if !s.Acquire(i, gen) {
		t.Fatal("Acquire by the new owner failed")
	}
	s.Release(i)
	if _, _, _, ok := s.Alloc(make([]byte, 4097)); ok {
		t.Error("Alloc took more bytes than a slot holds")
	}
	defer func() {
		if recover() == nil {
			t.Error("releasing a free slot did not panic")
		}
	}()
	s.Release(slots[1])
	s.Release(slots[1])
}

// TestSlabModel runs random sequences of Alloc, Acquire (with live and
// stale generations) and Release against a plain model of what the slab
// must do, and checks after every step that each reference sees the bytes
// it was stored with and that the counts agree.
func TestSlabModel(t *testing.T) {
	const n, slot = 6, 3 * 4096
	for seed := range uint64(20) {
		s := newTestSlab(t, n, slot)
		rng := rand.New(rand.NewPCG(seed, 7))
		type handle struct {
			slot int32
			gen  uint32
			data []byte
		}
		type lent struct {
			r, w int // a pipe holding references to the slot's pages, as a socket would
			data []byte
		}
		var (
			live  []handle // one per reference held
			seen  []handle // every generation ever handed out
			refs  [n]int
			gens  [n]uint32
			pipes []lent
		)
		drain := func(step int, p lent) {
			got := make([]byte, len(p.data)+1)
			k, err := unix.Read(p.r, got)
			unix.Close(p.r)
			unix.Close(p.w)
			if err != nil || !bytes.Equal(got[:max(k, 0)], p.data) {
				t.Fatalf("seed %d step %d: lent pages changed after the slot was let go: read %d of %d bytes, %v", seed, step, k, len(p.data), err)
			}
		}
		free := func() int {
			k := 0
			for i := range n {
				if refs[i] == 0 {
					k++
				}
			}
			return k
		}
		for step := range 400 {
			switch op := rng.IntN(10); {
			case op < 4: // Alloc
				data := make([]byte, 1+rng.IntN(slot))
				for k := range data {
					data[k] = byte(rng.Uint32())
				}
				i, gen, mem, ok := s.Alloc(data)
				if !ok {
					if free() != 0 {
						t.Fatalf("seed %d step %d: Alloc refused with %d free slots", seed, step, free())
					}
					continue
				}
				if refs[i] != 0 || gen <= gens[i] || !bytes.Equal(mem, data) {
					t.Fatalf("seed %d step %d: Alloc gave slot %d (refs %d, gen %d after %d)", seed, step, i, refs[i], gen, gens[i])
				}
				refs[i], gens[i] = 1, gen
				h := handle{i, gen, data}
				live, seen = append(live, h), append(seen, h)
			case op < 7 && len(seen) > 0: // Acquire, maybe with a stale generation
				h := seen[rng.IntN(len(seen))]
				want := refs[h.slot] > 0 && gens[h.slot] == h.gen
				if got := s.Acquire(h.slot, h.gen); got != want {
					t.Fatalf("seed %d step %d: Acquire(%d, gen %d) = %v, want %v", seed, step, h.slot, h.gen, got, want)
				} else if got {
					refs[h.slot]++
					live = append(live, h)
				}
			case op == 7 && len(live) > 0 && len(pipes) < 8 && s.Lending().On: // Lend into a pipe
				h := live[rng.IntN(len(live))]
				fd, off := s.Lend(h.slot)
				var p [2]int
				if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				if k, err := unix.Splice(fd, &off, p[1], nil, len(h.data), 0); err != nil || k != int64(len(h.data)) {
					t.Fatalf("splice %d of %d bytes: %v", k, len(h.data), err)
				}
				pipes = append(pipes, lent{p[0], p[1], h.data})
			case op == 8 && len(pipes) > 0: // the "socket" reads
				k := rng.IntN(len(pipes))
				drain(step, pipes[k])
				pipes = append(pipes[:k], pipes[k+1:]...)
			case len(live) > 0: // Release
				k := rng.IntN(len(live))
				h := live[k]
				live = append(live[:k], live[k+1:]...)
				s.Release(h.slot)
				refs[h.slot]--
			}
			inUse := 0
			for i := range n {
				if refs[i] > 0 {
					inUse++
				}
				if got := s.Refs(int32(i)); int(got) != refs[i] {
					t.Fatalf("seed %d step %d: Refs(%d) = %d, model %d", seed, step, i, got, refs[i])
				}
			}
			if _, u := s.Slots(); u != inUse {
				t.Fatalf("seed %d step %d: %d slots used, model %d", seed, step, u, inUse)
			}
			for _, h := range live {
				off := s.offset(h.slot)
				if !bytes.Equal(s.mem[off:off+int64(len(h.data))], h.data) {
					t.Fatalf("seed %d step %d: slot %d changed under a reference", seed, step, h.slot)
				}
			}
		}
		for _, p := range pipes {
			drain(-1, p)
		}
	}
}

// TestSlabBytesNeverChangeUnderAReader fills a tiny slab-backed cache from
// several goroutines, so that entries are evicted and slots reused all the
// time, while readers hold references and check that what they read is
// what was stored.
func TestSlabBytesNeverChangeUnderAReader(t *testing.T) {
	const slot = 4096
	c, err := New(Config{MaxBytes: 128 * (slot + entryOverhead), SlabSlotBytes: slot}, NewGenerations())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Slab() == nil {
		t.Skip("no slab on this platform")
	}
	content := func(key string, idx int64) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("%s#%d;", key, idx)), slot)[:slot-int(idx%7)]
	}
	const keys = 64
	fill := func(i, w int) {
		key := fmt.Sprintf("artists/%d/x", (i*7+w)%keys)
		idx := int64(i % 5)
		c.Set(c.Name([]byte(key)), KindSlice, idx, c.SliceEntry(content(key, idx), nil))
	}
	for i := range keys * 5 {
		fill(i, 0)
	}
	c.Wait()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				fill(i, w)
			}
		}()
	}
	var checked, races int
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; checked < 2000 && time.Now().Before(deadline); i++ {
		key := fmt.Sprintf("artists/%d/x", i%keys)
		idx := int64(i % 5)
		e, ok := c.Get(c.Name([]byte(key)), KindSlice, idx)
		if !ok {
			continue
		}
		s, gen, inSlab := e.Slot()
		if !inSlab {
			continue
		}
		if !c.Slab().Acquire(s, gen) {
			races++ // evicted between Get and Acquire: a miss
			continue
		}
		runtime.Gosched() // let the writers evict and reuse meanwhile
		if !bytes.Equal(e.Data, content(key, idx)) {
			close(stop)
			wg.Wait()
			t.Fatalf("slot %d changed under a reader", s)
		}
		c.Slab().Release(s)
		checked++
	}
	close(stop)
	wg.Wait()
	if checked == 0 {
		t.Fatal("no slab entry was ever read")
	}
	if st := c.Stats(); st.KeysEvicted+st.SetsRejected == 0 {
		t.Error("nothing was evicted or refused: the test did not reuse slots")
	}
	t.Logf("checked %d reads, %d lost to eviction", checked, races)
}
