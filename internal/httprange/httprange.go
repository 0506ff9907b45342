// Package httprange implements the parts of RFC 9110 that a server of
// immutable byte objects needs: single byte ranges (Range, Content-Range,
// 416), If-Range, and entity-tag matching for If-None-Match. The origin and
// the edge share it so that both answer the same request the same way, and
// every client of a byte server in Riff (the edge's origin client, the S3
// blob store, bench) reads Content-Range with ParseContentRange. It imports
// only the standard library.
//
// The parsers work on the raw header bytes a fasthttp handler sees and do not
// allocate on the happy path. They never fail loudly on bad input: a Range
// header this package cannot use is reported as "ignore it", which RFC 9110
// §14.2 allows (the answer is then 200 with the whole representation).
//
// Decisions where RFC 9110 leaves room:
//
//   - Only one range is served. A request for several ranges is answered
//     with the whole representation (200), as §14.2 permits, rather than with
//     multipart/byteranges: players never need it and it defeats caching.
//   - Numbers too large for an int64 saturate rather than make the header
//     invalid, so "bytes=0-99999999999999999999" means "to the end" and a
//     huge first-pos is unsatisfiable, which is what they literally ask for.
//   - Optional whitespace is tolerated around "=", "-" and ",", and the unit
//     "bytes" is matched case-insensitively (§14.1: range units are
//     case-insensitive).
//   - A zero-length representation: any int-range is unsatisfiable (416 with
//     "bytes */0"), while a suffix-range with a non-zero length, which §14.1.1
//     calls satisfiable but which no Content-Range can describe, is served as
//     the whole (empty) representation with 200.
//   - ParseContentRange reads what a server sends (§14.4), so it is strict
//     where Parse is lenient: exactly "bytes", one SP, no other whitespace;
//     a value with last-pos < first-pos or complete-length <= last-pos is
//     invalid (§14.4 says so), as is a number too large for an int64 (a size
//     we cannot hold cannot be trusted). The unit is matched
//     case-insensitively, as in Range.
package httprange

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"
)

// ErrUnsatisfiable is returned by Parse when the range is well formed but
// selects no byte of the representation. Answer 416 (Range Not Satisfiable)
// with "Content-Range: bytes */size" (see UnsatisfiedContentRange).
var ErrUnsatisfiable = errors.New("httprange: range not satisfiable")

// Range is a satisfiable byte range resolved against a representation: the
// bytes [Start, Start+Length). Length is at least 1.
type Range struct {
	Start, Length int64
}

// End returns the offset of the last byte in r (inclusive), as written in a
// Content-Range header.
func (r Range) End() int64 { return r.Start + r.Length - 1 }

// ContentRange returns the Content-Range value for r within a representation
// of size bytes, e.g. "bytes 0-99/1000".
func (r Range) ContentRange(size int64) string {
	var buf [64]byte
	return string(r.AppendContentRange(buf[:0], size))
}

// AppendContentRange appends the Content-Range value for r to dst and returns
// the extended slice. It does not allocate when dst has room.
func (r Range) AppendContentRange(dst []byte, size int64) []byte {
	dst = append(dst, "bytes "...)
	dst = strconv.AppendInt(dst, r.Start, 10)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, r.End(), 10)
	dst = append(dst, '/')
	return strconv.AppendInt(dst, size, 10)
}

// UnsatisfiedContentRange returns the Content-Range value that goes with a
// 416 answer for a representation of size bytes: "bytes */size".
func UnsatisfiedContentRange(size int64) string {
	var buf [32]byte
	return string(AppendUnsatisfiedContentRange(buf[:0], size))
}

// AppendUnsatisfiedContentRange appends "bytes */size" to dst.
func AppendUnsatisfiedContentRange(dst []byte, size int64) []byte {
	dst = append(dst, "bytes */"...)
	return strconv.AppendInt(dst, size, 10)
}

// ContentRange is a parsed Content-Range value (RFC 9110 §14.4): either a
// range-resp, "bytes first-last/size" (Size is -1 when the sender wrote "*"
// for an unknown complete-length), or an unsatisfied-range, "bytes */size",
// which goes with a 416 and carries only Size.
type ContentRange struct {
	Range       // the bytes sent; the zero Range for an unsatisfied-range
	Size  int64 // complete-length, or -1 for "*"
}

// Unsatisfied reports whether c is an unsatisfied-range ("bytes */size").
func (c ContentRange) Unsatisfied() bool { return c.Length == 0 }

// ParseContentRange parses a Content-Range header value: "bytes
// first-last/size", "bytes first-last/*" or "bytes */size". ok=false means
// the value is absent or invalid (see the package doc). It does not
// allocate.
func ParseContentRange(v []byte) (c ContentRange, ok bool) {
	const unit = "bytes"
	if len(v) < len(unit)+1 || !equalFoldASCII(v[:len(unit)], unit) || v[len(unit)] != ' ' {
		return ContentRange{}, false
	}
	v = v[len(unit)+1:]
	slash := bytes.IndexByte(v, '/')
	if slash < 0 {
		return ContentRange{}, false
	}
	resp, length := v[:slash], v[slash+1:]
	if len(resp) == 1 && resp[0] == '*' {
		size, ok := parseInt64(length)
		if !ok {
			return ContentRange{}, false
		}
		return ContentRange{Size: size}, true
	}
	dash := bytes.IndexByte(resp, '-')
	if dash < 0 {
		return ContentRange{}, false
	}
	first, ok1 := parseInt64(resp[:dash])
	last, ok2 := parseInt64(resp[dash+1:])
	// last == MaxInt64 cannot be an offset: the size would not fit either.
	if !ok1 || !ok2 || last < first || last == math.MaxInt64 {
		return ContentRange{}, false
	}
	size := int64(-1)
	if len(length) != 1 || length[0] != '*' {
		n, ok := parseInt64(length)
		if !ok || n <= last {
			return ContentRange{}, false
		}
		size = n
	}
	return ContentRange{Range: Range{Start: first, Length: last - first + 1}, Size: size}, true
}

// parseInt64 parses 1*DIGIT, failing rather than saturating when the number
// does not fit an int64.
func parseInt64(b []byte) (int64, bool) {
	n, ok, saturated := parseDigits(b)
	return n, ok && !saturated
}

// Spec is one byte-range-spec as written by the client, before it is resolved
// against a representation's size (RFC 9110 §14.1.1). It is either an
// int-range (First, and Last or "to the end") or a suffix-range (the last
// Suffix bytes).
type Spec struct {
	First int64 // first-pos of an int-range; unused for a suffix-range
	Last  int64 // last-pos of an int-range, or -1 for "to the end"
	// Suffix is the suffix-length of a suffix-range ("bytes=-500"), or -1
	// for an int-range.
	Suffix int64
}

// IsSuffix reports whether s is a suffix-range, which cannot be located
// without knowing the representation's size.
func (s Spec) IsSuffix() bool { return s.Suffix >= 0 }

// Resolve locates s in a representation of size bytes. ok=false with a nil
// error means the whole representation should be served (a suffix longer
// than the representation is not that: it selects all of it as a range). A
// range that selects nothing returns ErrUnsatisfiable.
func (s Spec) Resolve(size int64) (r Range, ok bool, err error) {
	if s.IsSuffix() {
		switch {
		case s.Suffix == 0:
			return Range{}, false, ErrUnsatisfiable
		case size == 0:
			return Range{}, false, nil
		}
		n := min(s.Suffix, size)
		return Range{Start: size - n, Length: n}, true, nil
	}
	if s.First >= size {
		return Range{}, false, ErrUnsatisfiable
	}
	last := size - 1
	if s.Last >= 0 && s.Last < last {
		last = s.Last
	}
	return Range{Start: s.First, Length: last - s.First + 1}, true, nil
}

// Parse interprets one Range header value against an object of size bytes.
// ok=false, err=nil means: ignore the header and serve 200 whole (absent,
// malformed, not "bytes", or multiple ranges — we serve a single range only,
// as RFC 9110 allows). err=ErrUnsatisfiable means answer 416.
//
// Parse does not allocate.
func Parse(header []byte, size int64) (r Range, ok bool, err error) {
	spec, ok := ParseSpec(header)
	if !ok {
		return Range{}, false, nil
	}
	return spec.Resolve(size)
}

// ParseSpec parses a Range header value holding a single byte-range-spec
// without resolving it. ok=false means the header is absent or is to be
// ignored (see Parse). It does not allocate.
func ParseSpec(header []byte) (s Spec, ok bool) {
	b := trimOWS(header)
	const unit = "bytes"
	if len(b) < len(unit) || !equalFoldASCII(b[:len(unit)], unit) {
		return Spec{}, false
	}
	b = trimOWS(b[len(unit):])
	if len(b) == 0 || b[0] != '=' {
		return Spec{}, false
	}
	b = b[1:]
	// range-set = 1#range-spec. The list rule (RFC 9110 §5.6.1) lets
	// recipients skip empty elements, so "bytes=, 0-1 ," is one range.
	found := false
	for len(b) > 0 {
		elem := b
		if i := bytes.IndexByte(b, ','); i >= 0 {
			elem, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		elem = trimOWS(elem)
		if len(elem) == 0 {
			continue
		}
		if found {
			return Spec{}, false // more than one range: serve the whole
		}
		if s, ok = parseRangeSpec(elem); !ok {
			return Spec{}, false
		}
		found = true
	}
	return s, found
}

// parseRangeSpec parses "first-[last]" or "-suffix".
func parseRangeSpec(b []byte) (Spec, bool) {
	i := bytes.IndexByte(b, '-')
	if i < 0 {
		return Spec{}, false
	}
	first, last := trimOWS(b[:i]), trimOWS(b[i+1:])
	if len(first) == 0 {
		n, ok, _ := parseDigits(last)
		if !ok {
			return Spec{}, false
		}
		return Spec{Last: -1, Suffix: n}, true
	}
	f, ok, _ := parseDigits(first)
	if !ok {
		return Spec{}, false
	}
	if len(last) == 0 {
		return Spec{First: f, Last: -1, Suffix: -1}, true
	}
	l, ok, _ := parseDigits(last)
	if !ok || l < f {
		// last-pos < first-pos makes the spec invalid (§14.1.1): ignore.
		return Spec{}, false
	}
	return Spec{First: f, Last: l, Suffix: -1}, true
}

// parseDigits parses 1*DIGIT, saturating at math.MaxInt64 (and then
// reporting saturated).
func parseDigits(b []byte) (n int64, ok, saturated bool) {
	if len(b) == 0 {
		return 0, false, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		d := int64(c - '0')
		if saturated || n > (math.MaxInt64-d)/10 {
			n, saturated = math.MaxInt64, true
			continue
		}
		n = n*10 + d
	}
	return n, true, saturated
}

// IfRangeAllows reports whether an If-Range value lets the Range apply
// (strong ETag match, or an HTTP-date equal to lastModified). An empty value
// (no If-Range header) allows it. A weak entity-tag never matches (RFC 9110
// §13.1.5 requires the strong comparison), and neither does a malformed
// value, so the client gets the whole representation, which is always safe.
func IfRangeAllows(ifRange []byte, etag string, lastModified time.Time) bool {
	v := trimOWS(ifRange)
	if len(v) == 0 {
		return true
	}
	if v[0] == '"' || (len(v) > 2 && v[0] == 'W' && v[1] == '/') {
		tag, rest, ok := scanETag(v)
		if !ok || len(trimOWS(rest)) != 0 || tag.weak {
			return false
		}
		return isStrong(etag) && string(tag.raw) == etag
	}
	if lastModified.IsZero() {
		return false
	}
	t, err := http.ParseTime(string(v))
	if err != nil {
		return false
	}
	return t.Equal(lastModified.Truncate(time.Second))
}

// ETagMatch implements If-None-Match (weak comparison, "*", lists): it
// reports whether ifNoneMatch names etag, in which case a GET or HEAD is
// answered 304 (Not Modified). etag is the representation's current
// entity-tag, quoted, optionally with W/; an empty etag never matches a list
// but does match "*" (the representation exists). A malformed list element
// ends the scan with no match. It does not allocate.
func ETagMatch(ifNoneMatch []byte, etag string) bool {
	v := trimOWS(ifNoneMatch)
	if len(v) == 1 && v[0] == '*' {
		return true
	}
	want := opaque(etag)
	if want == "" {
		return false
	}
	for len(v) > 0 {
		v = trimOWS(v)
		if len(v) == 0 {
			break
		}
		if v[0] == ',' {
			v = v[1:]
			continue
		}
		tag, rest, ok := scanETag(v)
		if !ok {
			return false
		}
		if string(tag.opaque) == want {
			return true
		}
		v = trimOWS(rest)
		if len(v) > 0 && v[0] != ',' {
			return false
		}
	}
	return false
}

// NotModifiedSince implements If-Modified-Since for GET and HEAD: it reports
// whether the value is an HTTP-date at or after lastModified (to the second),
// so a 304 is due. Per RFC 9110 §13.1.3 it must be ignored when the request
// also has If-None-Match; that is the caller's job. A malformed date does not
// match.
func NotModifiedSince(ifModifiedSince []byte, lastModified time.Time) bool {
	v := trimOWS(ifModifiedSince)
	if len(v) == 0 || lastModified.IsZero() {
		return false
	}
	t, err := http.ParseTime(string(v))
	if err != nil {
		return false
	}
	return !lastModified.Truncate(time.Second).After(t)
}

// entityTag is one parsed entity-tag. raw is the whole tag (with W/ and
// quotes), opaque the quoted part.
type entityTag struct {
	raw, opaque []byte
	weak        bool
}

// scanETag reads one entity-tag from the start of b (RFC 9110 §8.8.3):
// [ "W/" ] DQUOTE *etagc DQUOTE, where etagc excludes DQUOTE, spaces and
// controls.
func scanETag(b []byte) (tag entityTag, rest []byte, ok bool) {
	start := 0
	if len(b) >= 2 && b[0] == 'W' && b[1] == '/' {
		tag.weak = true
		start = 2
	}
	if len(b) < start+2 || b[start] != '"' {
		return entityTag{}, nil, false
	}
	for i := start + 1; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"':
			tag.raw, tag.opaque = b[:i+1], b[start:i+1]
			return tag, b[i+1:], true
		case c == 0x21, c >= 0x23 && c <= 0x7e, c >= 0x80:
		default:
			return entityTag{}, nil, false
		}
	}
	return entityTag{}, nil, false
}

// opaque returns the quoted part of an entity-tag string, or "" if it is not
// one.
func opaque(etag string) string {
	if len(etag) >= 2 && etag[0] == 'W' && etag[1] == '/' {
		etag = etag[2:]
	}
	if len(etag) < 2 || etag[0] != '"' || etag[len(etag)-1] != '"' {
		return ""
	}
	return etag
}

// isStrong reports whether etag is a well-formed strong entity-tag.
func isStrong(etag string) bool {
	return len(etag) >= 2 && etag[0] == '"' && etag[len(etag)-1] == '"'
}

// trimOWS removes optional whitespace (SP, HTAB) from both ends of b.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// equalFoldASCII reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
