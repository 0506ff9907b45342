package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"riff/internal/blobkey"
)

// Variant is one entry of an HLS multivariant (master) playlist.
type Variant struct {
	URL  string // absolute URL of the media playlist
	Kbps int    // nominal bitrate: the rung in the name (aac_128 → 128), else BANDWIDTH/1000
	// Bandwidth is the advertised peak bitrate in bits/s (BANDWIDTH).
	Bandwidth int
}

// Range is a byte range of an object, inclusive at both ends; Last < 0
// means the whole object.
type Range struct{ First, Last int64 }

// Len is the number of bytes the range names, or -1 for a whole object.
func (r Range) Len() int64 {
	if r.Last < 0 {
		return -1
	}
	return r.Last - r.First + 1
}

// Segment is a piece of media a player fetches: the init section (EXT-X-MAP)
// or a media segment.
type Segment struct {
	URL      string
	Range    Range
	Duration float64 // seconds (0 for the init section)
}

// MediaPlaylist is an HLS media playlist reduced to what a player fetches.
type MediaPlaylist struct {
	Init     *Segment // EXT-X-MAP, nil when there is none
	Segments []Segment
}

// Duration is the sum of the segments' durations in seconds.
func (m *MediaPlaylist) Duration() float64 {
	var d float64
	for _, s := range m.Segments {
		d += s.Duration
	}
	return d
}

// maxPlaylistLines bounds the work on a hostile playlist.
const maxPlaylistLines = 200000

// IsMaster reports whether an HLS playlist is a multivariant playlist.
func IsMaster(text []byte) bool { return bytes.Contains(text, []byte("#EXT-X-STREAM-INF:")) }

// ParseMaster reads the variants of a multivariant playlist fetched from
// base (the URL that relative URIs resolve against).
func ParseMaster(text []byte, base string) ([]Variant, error) {
	sc, err := newPlaylistScanner(text)
	if err != nil {
		return nil, err
	}
	var out []Variant
	var pending *Variant
	for sc.Scan() {
		line := sc.Line()
		switch {
		case strings.HasPrefix(line, "#EXT-X-STREAM-INF:"):
			attrs := parseAttrs(line[len("#EXT-X-STREAM-INF:"):])
			bw, err := strconv.Atoi(attrs["BANDWIDTH"])
			if err != nil || bw <= 0 {
				return nil, fmt.Errorf("hls: EXT-X-STREAM-INF without a valid BANDWIDTH: %q", line)
			}
			pending = &Variant{Bandwidth: bw}
		case strings.HasPrefix(line, "#"):
		case pending != nil:
			pending.URL = resolve(base, line)
			pending.Kbps = rungOf(line)
			if pending.Kbps == 0 {
				pending.Kbps = max(1, (pending.Bandwidth+500)/1000)
			}
			out = append(out, *pending)
			pending = nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("hls: no variants")
	}
	return out, nil
}

// ParseMedia reads the init section and the segments of a media playlist
// fetched from base. Byte ranges follow RFC 8216: an EXT-X-BYTERANGE
// without an offset starts where the previous range of the same URI ended.
func ParseMedia(text []byte, base string) (*MediaPlaylist, error) {
	sc, err := newPlaylistScanner(text)
	if err != nil {
		return nil, err
	}
	pl := &MediaPlaylist{}
	var (
		dur      float64
		rng      *Range
		lastURI  string
		lastNext int64
	)
	for sc.Scan() {
		line := sc.Line()
		switch {
		case strings.HasPrefix(line, "#EXT-X-MAP:"):
			attrs := parseAttrs(line[len("#EXT-X-MAP:"):])
			uri := attrs["URI"]
			if uri == "" {
				return nil, fmt.Errorf("hls: EXT-X-MAP without URI: %q", line)
			}
			r := Range{0, -1}
			if br, ok := attrs["BYTERANGE"]; ok {
				var err error
				if r, err = parseByteRange(br, -1); err != nil {
					return nil, err
				}
			}
			pl.Init = &Segment{URL: resolve(base, uri), Range: r}
		case strings.HasPrefix(line, "#EXTINF:"):
			v, _, _ := strings.Cut(line[len("#EXTINF:"):], ",")
			d, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || d < 0 || d > 86400 {
				return nil, fmt.Errorf("hls: bad EXTINF: %q", line)
			}
			dur = d
		case strings.HasPrefix(line, "#EXT-X-BYTERANGE:"):
			r, err := parseByteRange(line[len("#EXT-X-BYTERANGE:"):], lastNext)
			if err != nil {
				return nil, err
			}
			rng = &r
		case strings.HasPrefix(line, "#"):
		default:
			seg := Segment{URL: resolve(base, line), Range: Range{0, -1}, Duration: dur}
			if rng != nil {
				if rng.First < 0 { // no offset: continues the previous range of this URI
					if line != lastURI {
						return nil, fmt.Errorf("hls: EXT-X-BYTERANGE without offset after another URI: %q", line)
					}
					rng.Last += lastNext
					rng.First = lastNext
				}
				seg.Range = *rng
				lastNext = rng.Last + 1
			} else {
				lastNext = 0
			}
			lastURI = line
			pl.Segments = append(pl.Segments, seg)
			dur, rng = 0, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(pl.Segments) == 0 {
		return nil, errors.New("hls: no segments")
	}
	return pl, nil
}

// playlistScanner reads the lines of an HLS playlist that are not blank,
// trimmed, and stops past maxPlaylistLines.
type playlistScanner struct {
	sc  *bufio.Scanner
	n   int
	err error
}

// newPlaylistScanner refuses text that is not a playlist (no #EXTM3U).
func newPlaylistScanner(text []byte) (*playlistScanner, error) {
	if !bytes.HasPrefix(text, []byte("#EXTM3U")) {
		return nil, errors.New("hls: not a playlist (no #EXTM3U)")
	}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	return &playlistScanner{sc: sc}, nil
}

// Scan advances to the next line that is not blank, reporting false at
// the end or on an error (see Err).
func (p *playlistScanner) Scan() bool {
	for p.err == nil && p.sc.Scan() {
		if p.n++; p.n > maxPlaylistLines {
			p.err = errors.New("hls: playlist too long")
			return false
		}
		if p.Line() != "" {
			return true
		}
	}
	return false
}

// Line is the current line without surrounding white space.
func (p *playlistScanner) Line() string { return strings.TrimSpace(p.sc.Text()) }

// Err is the error that stopped Scan, nil at the end of the playlist.
func (p *playlistScanner) Err() error {
	if p.err != nil {
		return p.err
	}
	if err := p.sc.Err(); err != nil {
		return fmt.Errorf("hls: %w", err)
	}
	return nil
}

// parseByteRange parses "n[@o]". Without an offset, EXT-X-MAP (next < 0)
// starts at 0 (RFC 8216 4.3.2.5); a segment's range comes back with
// First = -1 and Last = n-1 for the caller to shift past the previous one.
func parseByteRange(s string, next int64) (Range, error) {
	s = strings.TrimSpace(s)
	ns, offs, hasOff := strings.Cut(s, "@")
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil || n <= 0 || n > 1<<40 {
		return Range{}, fmt.Errorf("hls: bad byte range %q", s)
	}
	if !hasOff {
		if next < 0 { // EXT-X-MAP: offset 0
			return Range{0, n - 1}, nil
		}
		return Range{-1, n - 1}, nil
	}
	o, err := strconv.ParseInt(offs, 10, 64)
	if err != nil || o < 0 || o > 1<<50 {
		return Range{}, fmt.Errorf("hls: bad byte range %q", s)
	}
	return Range{o, o + n - 1}, nil
}

// parseAttrs parses an HLS attribute list: KEY=value,KEY="quoted, value".
func parseAttrs(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		k, rest, ok := strings.Cut(s, "=")
		if !ok {
			break
		}
		k = strings.TrimSpace(k)
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				v, s = rest[1:], ""
			} else {
				v, s = rest[1:1+end], rest[2+end:]
				s = strings.TrimPrefix(s, ",")
			}
		} else {
			v, s, _ = strings.Cut(rest, ",")
		}
		out[k] = v
	}
	return out
}

// resolve returns ref relative to base the way a player does: absolute
// URLs as they are, "/x" on base's host, and "x" beside base. It does not
// clean dot segments: Riff's keys have none, and a token in the path must
// stay byte for byte.
func resolve(base, ref string) string {
	if strings.Contains(ref, "://") {
		return ref
	}
	if strings.HasPrefix(ref, "/") {
		scheme, rest, ok := strings.Cut(base, "://")
		if !ok {
			return ref
		}
		host, _, _ := strings.Cut(rest, "/")
		return scheme + "://" + host + ref
	}
	if q := strings.IndexAny(base, "?#"); q >= 0 {
		base = base[:q]
	}
	return base[:strings.LastIndexByte(base, '/')+1] + ref
}

// rungOf returns the bitrate rung in a rendition name or URL such as
// "aac_128.m3u8" or ".../aac_320.mp4?x=1" (blobkey.RungOf), or 0.
func rungOf(name string) int {
	if q := strings.IndexAny(name, "?#"); q >= 0 {
		name = name[:q]
	}
	return blobkey.RungOf(name)
}
