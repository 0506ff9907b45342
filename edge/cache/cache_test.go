package cache

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
)

func newTestCache(t *testing.T, maxBytes int64) (*Cache, *Generations) {
	t.Helper()
	gens := NewGenerations()
	c, err := New(Config{MaxBytes: maxBytes}, gens)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, gens
}

func TestGetFindsExactlyWhatWasSet(t *testing.T) {
	c, _ := newTestCache(t, 1<<20)
	key := []byte("artists/1/albums/2/songs/3/v1/aac_128.mp4")
	n := c.Name(key)
	meta := &Meta{Size: 100, ETag: `"x"`}
	c.Set(n, KindSlice, 0, &Entry{Data: []byte("slice0"), Meta: meta})
	c.Set(n, KindSlice, 1, &Entry{Data: []byte("slice1"), Meta: meta})
	c.Set(n, KindMeta, 0, &Entry{Meta: meta})
	c.Wait()
	tests := []struct {
		name Name
		kind Kind
		idx  int64
		want string // "" means a miss
	}{
		{n, KindSlice, 0, "slice0"},
		{n, KindSlice, 1, "slice1"},
		{n, KindSlice, 2, ""},
		{n, KindWhole, 0, ""},
		{n, KindFiltered, 0, ""},
		{c.Name([]byte("artists/1/albums/2/songs/3/v1/aac_64.mp4")), KindSlice, 0, ""},
		{c.NameAt(string(key), n.Gen()), KindSlice, 1, "slice1"},
		{c.NameAt(string(key), n.Gen()+1), KindSlice, 1, ""},
	}
	for _, tt := range tests {
		e, ok := c.Get(tt.name, tt.kind, tt.idx)
		got := ""
		if ok {
			got = string(e.Data)
		}
		if got != tt.want {
			t.Errorf("Get(kind %d, idx %d) = %q, want %q", tt.kind, tt.idx, got, tt.want)
		}
	}
	if e, ok := c.Get(n, KindMeta, 0); !ok || e.Meta != meta {
		t.Errorf("meta entry = %v, %v", e, ok)
	}
}

func TestPurgeMakesOldEntriesUnreachable(t *testing.T) {
	c, gens := newTestCache(t, 1<<20)
	song := []byte("artists/1/albums/2/songs/3/v1/aac_128.mp4")
	other := []byte("artists/1/albums/9/songs/4/v1/aac_128.mp4")
	put := func(key []byte) Name {
		n := c.Name(key)
		c.Set(n, KindSlice, 0, &Entry{Data: key})
		c.Wait()
		return n
	}
	has := func(key []byte) bool {
		e, ok := c.Get(c.Name(key), KindSlice, 0)
		return ok && bytes.Equal(e.Data, key)
	}
	old := put(song)
	put(other)
	if _, err := gens.Bump("artists/1/albums/2/"); err != nil {
		t.Fatal(err)
	}
	if has(song) {
		t.Error("purged album still served")
	}
	if !has(other) {
		t.Error("another album was purged too")
	}
	// A fetch that started before the purge stores under the old
	// generation: still unreachable.
	c.Set(old, KindSlice, 0, &Entry{Data: song})
	c.Wait()
	if has(song) {
		t.Error("a fetch from before the purge repopulated the new generation")
	}
	put(song)
	if !has(song) {
		t.Error("refilled entry not found")
	}
	if _, err := gens.Bump(""); err != nil {
		t.Fatal(err)
	}
	if has(song) || has(other) {
		t.Error("purge of everything left entries reachable")
	}
}

func TestGenerations(t *testing.T) {
	g := NewGenerations()
	keys := []string{
		"artists/1/albums/2/songs/3/v1/a.mp4",
		"artists/1/albums/2/songs/4/v1/a.mp4",
		"artists/1/albums/5/songs/6/v1/a.mp4",
		"artists/10/albums/2/songs/3/v1/a.mp4",
		"artists/1/cover.jpg",
	}
	gen := func() []uint64 {
		var out []uint64
		for _, k := range keys {
			out = append(out, g.Of([]byte(k)))
		}
		return out
	}
	if got := gen(); got[0] != 0 || got[4] != 0 {
		t.Fatalf("fresh generations = %v, want zeros", got)
	}
	steps := []struct {
		prefix  string
		changed []bool // per key
	}{
		{"artists/1/albums/2/songs/3/", []bool{true, false, false, false, false}},
		{"artists/1/albums/2/", []bool{true, true, false, false, false}},
		{"artists/1/", []bool{true, true, true, false, true}},
		{"artists/10/", []bool{false, false, false, true, false}},
		{"artists/1/albums/2/songs/3/", []bool{true, false, false, false, false}},
		{"", []bool{true, true, true, true, true}},
	}
	for _, st := range steps {
		before := gen()
		if _, err := g.Bump(st.prefix); err != nil {
			t.Fatalf("Bump(%q): %v", st.prefix, err)
		}
		after := gen()
		for i := range keys {
			if changed := after[i] != before[i]; changed != st.changed[i] {
				t.Errorf("after Bump(%q): %s changed = %v, want %v", st.prefix, keys[i], changed, st.changed[i])
			}
		}
	}
	for _, bad := range []string{"artists/", "artists/1", "artists/1/albums/", "/artists/1/", "artists//x/", "artists/1/albums/2/songs/3/v1/"} {
		if _, err := g.Bump(bad); err == nil {
			t.Errorf("Bump(%q) accepted", bad)
		}
	}
}

func BenchmarkGetHit(b *testing.B) {
	gens := NewGenerations()
	gens.Bump("artists/9/")
	c, _ := New(Config{MaxBytes: 64 << 20}, gens)
	defer c.Close()
	key := []byte("artists/1/albums/2/songs/3/v1/aac_128.mp4")
	n := c.Name(key)
	c.Set(n, KindSlice, 0, &Entry{Data: make([]byte, 1<<20)})
	c.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := c.Get(c.Name(key), KindSlice, 0); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkKeyScheme compares the cache's naming (two maphash hashes of the
// key mixed with generation, kind and index into a uint64 ristretto key,
// identity checked in the entry) with ristretto's string keys (the key,
// generation and index formatted into a string, hashed by ristretto).
func BenchmarkKeyScheme(b *testing.B) {
	key := []byte("artists/1/albums/2/songs/3/v1/aac_128.mp4")
	b.Run("uint64", func(b *testing.B) {
		c, _ := New(Config{MaxBytes: 64 << 20}, NewGenerations())
		defer c.Close()
		n := c.Name(key)
		for i := range int64(8) {
			c.Set(n, KindSlice, i, &Entry{Data: []byte("x")})
		}
		c.Wait()
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			if _, ok := c.Get(c.Name(key), KindSlice, i&7); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
	b.Run("string", func(b *testing.B) {
		rc, _ := ristretto.NewCache(&ristretto.Config[string, []byte]{NumCounters: 1e5, MaxCost: 64 << 20, BufferItems: 64})
		defer rc.Close()
		name := func(buf []byte, gen uint64, idx int64) []byte {
			buf = append(buf[:0], key...)
			buf = append(buf, '#')
			buf = strconv.AppendUint(buf, gen, 10)
			buf = append(buf, '#')
			return strconv.AppendInt(buf, idx, 10)
		}
		var buf []byte
		for i := range int64(8) {
			buf = name(buf, 0, i)
			rc.Set(string(buf), []byte("x"), 1)
		}
		rc.Wait()
		b.ReportAllocs()
		i := int64(0)
		for b.Loop() {
			buf = name(buf, 0, i&7)
			if _, ok := rc.Get(string(buf)); !ok {
				b.Fatal("miss")
			}
			i++
		}
	})
}

// TestRestoreGenerations: restored generations name objects as the
// purged ones did, and the next purge takes a larger number than any.
func TestRestoreGenerations(t *testing.T) {
	g, err := RestoreGenerations(5, 2, map[string]uint64{"artists/1/": 5, "artists/1/albums/2/songs/3/": 4})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		key  string
		want uint64
	}{
		{"artists/1/albums/2/songs/3/v1/a.mp4", 5},
		{"artists/2/albums/2/songs/3/v1/a.mp4", 2},
	} {
		if got := g.Of([]byte(tt.key)); got != tt.want {
			t.Errorf("Of(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
	if next, _ := g.Bump("artists/9/"); next != 6 {
		t.Errorf("the next purge took %d, want 6", next)
	}
	if _, err := RestoreGenerations(1, 0, map[string]uint64{"artists/": 1}); err == nil {
		t.Error("a prefix that is not a purge folder was restored")
	}
}

// TestSlicesCannotEvictSmallEntries: metadata and playlists have a budget
// of their own, so a stream of slices far larger than the cache evicts
// slices only. In one shared cache, each 64 KiB slice's admission evicted
// small entries by sampling, and a burst like this one left almost none.
func TestSlicesCannotEvictSmallEntries(t *testing.T) {
	c, _ := newTestCache(t, 4<<20)
	const small = 200
	for i := range small {
		n := c.Name(fmt.Appendf(nil, "artists/1/albums/1/songs/%d/v1/master.m3u8", i))
		c.Set(n, KindMeta, 0, &Entry{Meta: &Meta{Size: 1000, ETag: `"e"`}})
		c.Set(n, KindWhole, 0, &Entry{Data: make([]byte, 2000)})
	}
	c.Wait()
	slice := make([]byte, 64<<10)
	for i := range 2000 {
		n := c.Name(fmt.Appendf(nil, "artists/2/albums/2/songs/%d/v1/aac_320.mp4", i%400))
		c.Set(n, KindSlice, int64(i), c.SliceEntry(slice, nil))
	}
	c.Wait()
	if st := c.Stats(); st.KeysEvicted == 0 {
		t.Fatal("no slice was evicted: the test proves nothing")
	}
	kept := 0
	for i := range small {
		n := c.Name(fmt.Appendf(nil, "artists/1/albums/1/songs/%d/v1/master.m3u8", i))
		if c.Has(n, KindMeta, 0) && c.Has(n, KindWhole, 0) {
			kept++
		}
	}
	if kept < small*9/10 {
		t.Errorf("%d of %d small objects kept after the slices' churn, want nearly all", kept, small)
	}
}
