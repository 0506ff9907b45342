package disk

import (
	"bytes"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	in := header{key: "artists/1/albums/2/songs/3/v1/aac_128.mp4", gen: 7, idx: 3,
		meta:    Meta{Size: 5 << 20, ETag: `"abc"`, ContentType: "audio/mp4", LastModified: "Sat, 05 Dec 2026 10:00:00 GMT"},
		dataLen: 1 << 20, dataCRC: 0xdeadbeef, sliceBytes: 1 << 20}
	b := make([]byte, HeaderBytes)
	if err := encodeHeader(b, &in); err != nil {
		t.Fatal(err)
	}
	got, err := decodeHeader(b)
	if err != nil || got != in {
		t.Fatalf("decodeHeader(encodeHeader(%+v)) = %+v, %v", in, got, err)
	}
	for i := range HeaderBytes { // any flipped byte is caught
		c := bytes.Clone(b)
		c[i] ^= 0x40
		if _, err := decodeHeader(c); err == nil {
			t.Fatalf("byte %d flipped: header still decodes", i)
		}
	}
	if _, err := decodeHeader(b[:HeaderBytes-1]); err != errShort {
		t.Errorf("short header: %v, want errShort", err)
	}
	long := in
	long.key = string(bytes.Repeat([]byte("a"), maxStrings))
	if err := encodeHeader(b, &long); err != errTooLong {
		t.Errorf("oversized strings: %v, want errTooLong", err)
	}
}

func TestParseID(t *testing.T) {
	id := SliceID("artists/1/x.mp4", 2, 3)
	if got, ok := parseID(id.String() + ".slice"); !ok || got != id {
		t.Fatalf("parseID(%s.slice) = %v, %v", id, got, ok)
	}
	if SliceID("artists/1/x.mp4", 2, 4) == id || SliceID("artists/1/x.mp4", 3, 3) == id {
		t.Fatal("IDs of different slices are equal")
	}
	for _, bad := range []string{"", "x.slice", id.String(), id.String() + ".slicE", "zz" + id.String()[2:] + ".slice"} {
		if _, ok := parseID(bad); ok {
			t.Errorf("parseID(%q) accepted", bad)
		}
	}
}

// FuzzDecodeHeader: no input makes decodeHeader panic, and whatever it
// accepts encodes back to the same header.
func FuzzDecodeHeader(f *testing.F) {
	b := make([]byte, HeaderBytes)
	encodeHeader(b, &header{key: "artists/1/a.mp4", gen: 1, idx: 0, meta: Meta{Size: 10, ETag: `"e"`}, dataLen: 10, sliceBytes: 10})
	f.Add(b)
	f.Add(make([]byte, HeaderBytes))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := decodeHeader(in)
		if err != nil {
			return
		}
		out := make([]byte, HeaderBytes)
		if err := encodeHeader(out, &h); err != nil {
			t.Fatalf("accepted header does not encode: %v", err)
		}
		h2, err := decodeHeader(out)
		if err != nil || h2 != h {
			t.Fatalf("round trip: %+v, %v; want %+v", h2, err, h)
		}
	})
}

// FuzzParsePurges: no input panics the purge log parser, and a log it
// accepts is written back by Open's compaction to the same state.
func FuzzParsePurges(f *testing.F) {
	f.Add([]byte("3 artists/1/\n5 *\n7 artists/1/albums/2/\n"))
	f.Add([]byte("3 artists/1/\n4 artists/2"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := parsePurges(in)
		if err != nil {
			return
		}
		for pfx, g := range p.Prefixes {
			if g > p.Seq || !validPrefix(pfx) {
				t.Fatalf("accepted %q at %d with seq %d", pfx, g, p.Seq)
			}
		}
		if p.Floor > p.Seq {
			t.Fatalf("floor %d above seq %d", p.Floor, p.Seq)
		}
	})
}
