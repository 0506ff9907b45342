package httprange

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

type parseResult struct {
	r   Range
	ok  bool
	err error
}

func TestParse(t *testing.T) {
	const size = 1000
	ignore := parseResult{}
	unsat := parseResult{err: ErrUnsatisfiable}
	rng := func(start, length int64) parseResult { return parseResult{Range{start, length}, true, nil} }
	tests := []struct {
		in   string
		size int64
		want parseResult
	}{
		// Absent, malformed, other units: ignore and serve 200.
		{"", size, ignore},
		{"   ", size, ignore},
		{"bytes", size, ignore},
		{"bytes=", size, ignore},
		{"bytes=,", size, ignore},
		{"bytes 0-1", size, ignore},
		{"bytes:0-1", size, ignore},
		{"items=0-1", size, ignore},
		{"bytesx=0-1", size, ignore},
		{"bytes=abc", size, ignore},
		{"bytes=-", size, ignore},
		{"bytes=1", size, ignore},
		{"bytes=1-2-3", size, ignore},
		{"bytes=a-5", size, ignore},
		{"bytes=5-a", size, ignore},
		{"bytes=-a", size, ignore},
		{"bytes=+1-2", size, ignore},
		{"bytes=-1-2", size, ignore},
		{"bytes=0x10-", size, ignore},
		{"bytes=1 0-20", size, ignore},
		{"bytes=100-50", size, ignore}, // last < first: invalid
		{"bytes=0-0,5-6", size, ignore},
		{"bytes=0-0, -1", size, ignore},
		{"bytes=0-1,2000-3000", size, ignore},

		// Int ranges.
		{"bytes=0-", size, rng(0, 1000)},
		{"bytes=0-0", size, rng(0, 1)},
		{"bytes=0-99", size, rng(0, 100)},
		{"bytes=100-199", size, rng(100, 100)},
		{"bytes=999-999", size, rng(999, 1)},
		{"bytes=999-", size, rng(999, 1)},
		{"bytes=500-1500", size, rng(500, 500)}, // end past size: clamped
		{"bytes=500-999", size, rng(500, 500)},
		{"bytes=1000-", size, unsat},
		{"bytes=1000-1000", size, unsat},
		{"bytes=5000-6000", size, unsat},

		// Suffix ranges.
		{"bytes=-500", size, rng(500, 500)},
		{"bytes=-1", size, rng(999, 1)},
		{"bytes=-1000", size, rng(0, 1000)},
		{"bytes=-5000", size, rng(0, 1000)}, // longer than the object: all of it
		{"bytes=-0", size, unsat},
		{"bytes=-000", size, unsat},

		// Whitespace, case and empty list elements.
		{"  bytes=0-9  ", size, rng(0, 10)},
		{"\tbytes = 0 - 9\t", size, rng(0, 10)},
		{"BYTES=0-9", size, rng(0, 10)},
		{"Bytes=-10", size, rng(990, 10)},
		{"bytes=, 0-9 ,", size, rng(0, 10)},
		{"bytes=0-9,", size, rng(0, 10)},
		{"bytes=00010-00019", size, rng(10, 10)},

		// Overflowing digits saturate.
		{"bytes=0-99999999999999999999999999", size, rng(0, 1000)},
		{"bytes=99999999999999999999999999-", size, unsat},
		{"bytes=99999999999999999999999999-99999999999999999999999999", size, unsat},
		{"bytes=-99999999999999999999999999", size, rng(0, 1000)},
		{"bytes=9223372036854775807-", math.MaxInt64, unsat},
		{"bytes=9223372036854775806-", math.MaxInt64, rng(math.MaxInt64-1, 1)},

		// A zero-length object.
		{"bytes=0-", 0, unsat},
		{"bytes=0-0", 0, unsat},
		{"bytes=-1", 0, ignore},
		{"bytes=-0", 0, unsat},
		{"bytes=1-2", 0, unsat},

		// A one-byte object.
		{"bytes=0-", 1, rng(0, 1)},
		{"bytes=-1", 1, rng(0, 1)},
		{"bytes=-9", 1, rng(0, 1)},
		{"bytes=1-", 1, unsat},
	}
	for _, tt := range tests {
		r, ok, err := Parse([]byte(tt.in), tt.size)
		got := parseResult{r, ok, err}
		if got != tt.want {
			t.Errorf("Parse(%q, %d) = %v, want %v", tt.in, tt.size, got, tt.want)
		}
		// The answer a valid range gives must be a valid Content-Range.
		if ok && (r.Start < 0 || r.Length < 1 || r.End() >= tt.size) {
			t.Errorf("Parse(%q, %d) = %+v, outside the object", tt.in, tt.size, r)
		}
	}
}

func TestContentRange(t *testing.T) {
	tests := []struct {
		r    Range
		size int64
		want string
	}{
		{Range{0, 100}, 1000, "bytes 0-99/1000"},
		{Range{0, 1}, 1, "bytes 0-0/1"},
		{Range{999, 1}, 1000, "bytes 999-999/1000"},
		{Range{math.MaxInt64 - 1, 1}, math.MaxInt64, "bytes 9223372036854775806-9223372036854775806/9223372036854775807"},
	}
	for _, tt := range tests {
		if got := tt.r.ContentRange(tt.size); got != tt.want {
			t.Errorf("%+v.ContentRange(%d) = %q, want %q", tt.r, tt.size, got, tt.want)
		}
	}
	if got, want := UnsatisfiedContentRange(1000), "bytes */1000"; got != want {
		t.Errorf("UnsatisfiedContentRange(1000) = %q, want %q", got, want)
	}
}

func TestParseContentRange(t *testing.T) {
	rng := func(first, last, size int64) ContentRange {
		return ContentRange{Range{Start: first, Length: last - first + 1}, size}
	}
	tests := []struct {
		in   string
		want ContentRange
		ok   bool
	}{
		// range-resp
		{"bytes 0-99/1000", rng(0, 99, 1000), true},
		{"bytes 0-9/10", rng(0, 9, 10), true},
		{"bytes 5-5/100", rng(5, 5, 100), true},
		{"bytes 999-999/1000", rng(999, 999, 1000), true},
		{"Bytes 0-0/1", rng(0, 0, 1), true},
		{"bytes 10-10/*", rng(10, 10, -1), true},
		{"bytes 00010-00019/0100", rng(10, 19, 100), true},
		{"bytes 9223372036854775805-9223372036854775806/9223372036854775807",
			rng(math.MaxInt64-2, math.MaxInt64-1, math.MaxInt64), true},
		{"bytes 0-9223372036854775806/*", rng(0, math.MaxInt64-1, -1), true},

		// unsatisfied-range
		{"bytes */1000", ContentRange{Size: 1000}, true},
		{"bytes */0", ContentRange{Size: 0}, true},

		// invalid
		{"", ContentRange{}, false},
		{"bytes", ContentRange{}, false},
		{"bytes ", ContentRange{}, false},
		{"items 0-1/2", ContentRange{}, false},
		{"bytes=0-1/2", ContentRange{}, false},
		{"bytes  0-1/2", ContentRange{}, false},
		{" bytes 0-1/2", ContentRange{}, false},
		{"bytes 0-1/2 ", ContentRange{}, false},
		{"bytes 0 - 1/2", ContentRange{}, false},
		{"bytes 0-1", ContentRange{}, false},
		{"bytes 0-99/99", ContentRange{}, false}, // complete-length <= last-pos
		{"bytes 5-4/10", ContentRange{}, false},  // last-pos < first-pos
		{"bytes -1-2/3", ContentRange{}, false},  // no negative numbers
		{"bytes +1-2/3", ContentRange{}, false},
		{"bytes 1-2/+3", ContentRange{}, false},
		{"bytes 1-/3", ContentRange{}, false},
		{"bytes -2/3", ContentRange{}, false},
		{"bytes 1-2-3/4", ContentRange{}, false},
		{"bytes 0-1/2/3", ContentRange{}, false},
		{"bytes 1-2/", ContentRange{}, false},
		{"bytes */*", ContentRange{}, false},
		{"bytes */", ContentRange{}, false},
		{"bytes **/10", ContentRange{}, false},
		{"bytes */-1", ContentRange{}, false},
		{"bytes 0x1-2/3", ContentRange{}, false},
		{"bytes 0-9223372036854775807/*", ContentRange{}, false},
		{"bytes 0-1/9223372036854775808", ContentRange{}, false}, // overflows
		{"bytes */99999999999999999999", ContentRange{}, false},
		{"bytes 99999999999999999999-99999999999999999999/*", ContentRange{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseContentRange([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseContentRange(%q) = %+v, %v, want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && got.Unsatisfied() != strings.Contains(tt.in, "*/") {
			t.Errorf("ParseContentRange(%q).Unsatisfied() = %v", tt.in, got.Unsatisfied())
		}
	}
}

// TestContentRangeRoundTrip checks that ParseContentRange reads back what
// AppendContentRange and AppendUnsatisfiedContentRange write.
func TestContentRangeRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		r    Range
		size int64
	}{{Range{0, 1}, 1}, {Range{0, 100}, 1000}, {Range{999, 1}, 1000}, {Range{math.MaxInt64 - 1, 1}, math.MaxInt64}} {
		v := tt.r.ContentRange(tt.size)
		got, ok := ParseContentRange([]byte(v))
		if want := (ContentRange{tt.r, tt.size}); !ok || got != want {
			t.Errorf("ParseContentRange(%q) = %+v, %v, want %+v, true", v, got, ok, want)
		}
	}
	for _, size := range []int64{0, 1, 1000, math.MaxInt64} {
		v := UnsatisfiedContentRange(size)
		got, ok := ParseContentRange([]byte(v))
		if want := (ContentRange{Size: size}); !ok || got != want || !got.Unsatisfied() {
			t.Errorf("ParseContentRange(%q) = %+v, %v, want %+v, true", v, got, ok, want)
		}
	}
}

func TestIfRangeAllows(t *testing.T) {
	lm := time.Date(2026, 3, 1, 12, 30, 45, 500_000_000, time.UTC)
	const etag = `"abc"`
	tests := []struct {
		ifRange string
		etag    string
		lm      time.Time
		want    bool
	}{
		{"", etag, lm, true},
		{`"abc"`, etag, lm, true},
		{` "abc" `, etag, lm, true},
		{`"abd"`, etag, lm, false},
		{`W/"abc"`, etag, lm, false},      // weak tags never match (strong comparison)
		{`"abc"`, `W/"abc"`, lm, false},   // nor does a weak current tag
		{`"abc", "def"`, etag, lm, false}, // one tag only
		{`"abc`, etag, lm, false},
		{`abc`, etag, lm, false},
		{"Sun, 01 Mar 2026 12:30:45 GMT", etag, lm, true},
		{"Sunday, 01-Mar-26 12:30:45 GMT", etag, lm, true},
		{"Sun Mar  1 12:30:45 2026", etag, lm, true},
		{"Sun, 01 Mar 2026 12:30:44 GMT", etag, lm, false},
		{"Sun, 01 Mar 2026 12:30:46 GMT", etag, lm, false}, // must be equal, not later
		{"Sun, 01 Mar 2026 12:30:45 GMT", etag, time.Time{}, false},
		{"yesterday", etag, lm, false},
	}
	for _, tt := range tests {
		if got := IfRangeAllows([]byte(tt.ifRange), tt.etag, tt.lm); got != tt.want {
			t.Errorf("IfRangeAllows(%q, %q, %v) = %v, want %v", tt.ifRange, tt.etag, tt.lm, got, tt.want)
		}
	}
}

func TestETagMatch(t *testing.T) {
	tests := []struct {
		inm  string
		etag string
		want bool
	}{
		{"", `"abc"`, false},
		{"*", `"abc"`, true},
		{" * ", `"abc"`, true},
		{"*", "", true},
		{`"abc"`, `"abc"`, true},
		{`W/"abc"`, `"abc"`, true}, // weak comparison
		{`"abc"`, `W/"abc"`, true},
		{`W/"abc"`, `W/"abc"`, true},
		{`"abd"`, `"abc"`, false},
		{`"x", "abc"`, `"abc"`, true},
		{`"x","y" ,  W/"abc"`, `"abc"`, true},
		{`"x", "y"`, `"abc"`, false},
		{`"a,b", "c"`, `"a,b"`, true}, // commas inside a tag
		{`"a,b"`, `"a"`, false},
		{`, ,"abc"`, `"abc"`, true},
		{`"abc`, `"abc"`, false},
		{`abc`, `"abc"`, false},
		{`"x" junk, "abc"`, `"abc"`, false}, // malformed list: no match
		{`"abc"`, ``, false},
		{`"abc"`, `abc`, false},
		{`""`, `""`, true},
	}
	for _, tt := range tests {
		if got := ETagMatch([]byte(tt.inm), tt.etag); got != tt.want {
			t.Errorf("ETagMatch(%q, %q) = %v, want %v", tt.inm, tt.etag, got, tt.want)
		}
	}
}

func TestNotModifiedSince(t *testing.T) {
	lm := time.Date(2026, 3, 1, 12, 30, 45, 500_000_000, time.UTC)
	tests := []struct {
		ims  string
		want bool
	}{
		{"", false},
		{"Sun, 01 Mar 2026 12:30:45 GMT", true},
		{"Sun, 01 Mar 2026 12:30:46 GMT", true},
		{"Sun, 01 Mar 2026 12:30:44 GMT", false},
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := NotModifiedSince([]byte(tt.ims), lm); got != tt.want {
			t.Errorf("NotModifiedSince(%q) = %v, want %v", tt.ims, got, tt.want)
		}
	}
}

func TestParseDoesNotAllocate(t *testing.T) {
	headers := [][]byte{[]byte("bytes=0-1023"), []byte("bytes=-500"), []byte("bytes=100-"), []byte("bytes=0-1,2-3")}
	inm, etag := []byte(`"x", W/"abc"`), `"abc"`
	var sink int64
	allocs := testing.AllocsPerRun(100, func() {
		for _, h := range headers {
			r, _, _ := Parse(h, 1<<20)
			sink += r.Length
		}
		if ETagMatch(inm, etag) && IfRangeAllows([]byte(`"abc"`), etag, time.Time{}) {
			sink++
		}
		var buf [64]byte
		sink += int64(len(Range{0, 10}.AppendContentRange(buf[:0], 100)))
	})
	if allocs != 0 {
		t.Errorf("Parse, ETagMatch, IfRangeAllows(etag), AppendContentRange: %v allocs per run, want 0", allocs)
	}
	_ = sink
}

func TestParseContentRangeDoesNotAllocate(t *testing.T) {
	values := [][]byte{[]byte("bytes 0-1023/1048576"), []byte("bytes */1048576"), []byte("bytes 10-10/*"), []byte("bytes 5-4/10")}
	var sink int64
	allocs := testing.AllocsPerRun(100, func() {
		for _, v := range values {
			c, _ := ParseContentRange(v)
			sink += c.Length + c.Size
		}
	})
	if allocs != 0 {
		t.Errorf("ParseContentRange: %v allocs per run, want 0", allocs)
	}
	_ = sink
}

// FuzzParse checks that Parse never panics and that what it accepts is a
// range inside the object, and that the answer agrees with a simple reading
// of the grammar.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"bytes=0-", "bytes=0-0", "bytes=-500", "bytes=100-50", "bytes=-0",
		"bytes=0-1,2-3", " bytes = 1 - 2 ", "bytes=99999999999999999999-", "BYTES=,5-", "bytes=-"} {
		f.Add([]byte(s), int64(1000))
		f.Add([]byte(s), int64(0))
	}
	f.Fuzz(func(t *testing.T, header []byte, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				size = math.MaxInt64
			}
		}
		r, ok, err := Parse(header, size)
		switch {
		case ok && err != nil:
			t.Fatalf("Parse(%q, %d) = ok and %v", header, size, err)
		case ok:
			if r.Start < 0 || r.Length < 1 || r.Start > size-r.Length {
				t.Fatalf("Parse(%q, %d) = %+v, outside the object", header, size, r)
			}
			if !strings.Contains(strings.ToLower(string(header)), "bytes") {
				t.Fatalf("Parse(%q, %d) accepted a header without the bytes unit", header, size)
			}
		case err != nil && !errors.Is(err, ErrUnsatisfiable):
			t.Fatalf("Parse(%q, %d) err = %v", header, size, err)
		}
		ETagMatch(header, `"abc"`)
		IfRangeAllows(header, `"abc"`, time.Unix(0, 0))
	})
}

// FuzzParseContentRange checks that ParseContentRange never panics, that
// what it accepts is a valid range-resp or unsatisfied-range, and that
// writing the result back gives the same value up to leading zeros and case.
func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-99/1000", "bytes 10-10/*", "bytes */1000", "bytes 5-4/10",
		"Bytes 0-0/1", "bytes 0-9223372036854775806/9223372036854775807", "bytes -1-2/3", "bytes */*"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		c, ok := ParseContentRange(v)
		if !ok {
			if c != (ContentRange{}) {
				t.Fatalf("ParseContentRange(%q) = %+v, false", v, c)
			}
			return
		}
		var want string
		switch {
		case c.Unsatisfied():
			if c.Range != (Range{}) || c.Size < 0 {
				t.Fatalf("ParseContentRange(%q) = %+v", v, c)
			}
			want = UnsatisfiedContentRange(c.Size)
		case c.Start < 0 || c.Length < 1 || c.End() < c.Start || c.Size >= 0 && c.Size <= c.End() || c.Size < -1:
			t.Fatalf("ParseContentRange(%q) = %+v, not a valid range", v, c)
		case c.Size == -1:
			want = strings.TrimSuffix(c.ContentRange(0), "0") + "*"
		default:
			want = c.ContentRange(c.Size)
		}
		if got := strings.ToLower(string(v)); stripZeros(got) != want {
			t.Fatalf("ParseContentRange(%q) = %+v, which writes back as %q", v, c, want)
		}
	})
}

// stripZeros removes the leading zeros of the numbers in s.
func stripZeros(s string) string {
	isDigit := func(c byte) bool { return '0' <= c && c <= '9' }
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		startOfNumber := i == 0 || !isDigit(s[i-1]) || len(b) > 0 && !isDigit(b[len(b)-1])
		if s[i] == '0' && startOfNumber && i+1 < len(s) && isDigit(s[i+1]) {
			continue
		}
		b = append(b, s[i])
	}
	return string(b)
}

func BenchmarkParse(b *testing.B) {
	h := []byte("bytes=1048576-2097151")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok, _ := Parse(h, 5<<20); !ok {
			b.Fatal("not ok")
		}
	}
}
