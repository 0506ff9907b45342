package edge

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"

	"github.com/valyala/fasthttp"

	"riff/edge/cache"
	"riff/internal/blobkey"
)

// Tier filtering.
//
// A token's mbr claim is the listener's bitrate ceiling in kbps. A variant
// (HLS) or Representation (DASH) is judged by its nominal ladder rung, which
// Riff's packager writes into every rendition name: aac_320.m3u8,
// aac_320.mp4, Representation id "aac_320". It is kept when rung <= mbr.
// Measured bitrates are not used when a rung is known, because BANDWIDTH
// is the peak segment bitrate including container overhead (a 128 kbps
// rendition advertises ~135000) and would put a rung on the wrong side of
// its own ceiling. A variant without a rung in its name falls back to
// AVERAGE-BANDWIDTH (else BANDWIDTH; DASH: bandwidth) <= mbr*1000*1.2,
// the 20% allowing for that overhead.
//
// The filters remove text and never rewrite it: everything that is kept is
// byte-for-byte what the origin sent, so the output is as valid as the
// input. A filter reports how many variants it kept; zero means nothing the
// listener may play, which the handler answers with 403.

// keepVariant applies the rule above. rung is 0 when the name has none;
// bw is the measured bitrate in bit/s, 0 when unknown.
func keepVariant(rung int, bw int64, maxKbps int) bool {
	if rung > 0 {
		return rung <= maxKbps
	}
	if bw > 0 {
		return bw <= int64(maxKbps)*1200
	}
	return true // nothing to judge by; the packager never writes this
}

var (
	tagStreamInf       = []byte("#EXT-X-STREAM-INF:")
	tagIFrameStreamInf = []byte("#EXT-X-I-FRAME-STREAM-INF:")
	tagMedia           = []byte("#EXT-X-MEDIA:")
)

// filterMaster removes from an HLS multivariant playlist the variants above
// maxKbps: an EXT-X-STREAM-INF tag together with its URI line, an
// EXT-X-I-FRAME-STREAM-INF tag, an EXT-X-MEDIA tag whose URI names a rung
// above the ceiling. It returns the filtered text and the number of
// EXT-X-STREAM-INF variants kept, or -1 with src unchanged when src has
// none (not a multivariant playlist).
func filterMaster(src []byte, maxKbps int) ([]byte, int) {
	if !bytes.Contains(src, tagStreamInf) {
		return src, -1
	}
	out := make([]byte, 0, len(src))
	kept := 0
	dropping := false // inside a dropped STREAM-INF, until its URI line
	for rest := src; len(rest) > 0; {
		line := rest
		next := len(rest)
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, next = rest[:i], i+1
		}
		whole := rest[:next]
		rest = rest[next:]
		text := bytes.TrimRight(line, "\r")
		trimmed := bytes.TrimSpace(text)
		if dropping {
			if len(trimmed) > 0 && trimmed[0] != '#' {
				dropping = false // the URI line of the dropped variant
			}
			continue
		}
		switch {
		case bytes.HasPrefix(text, tagStreamInf):
			attrs := text[len(tagStreamInf):]
			uri := nextURI(rest)
			bw := attrInt(attrs, "AVERAGE-BANDWIDTH")
			if bw == 0 {
				bw = attrInt(attrs, "BANDWIDTH")
			}
			if !keepVariant(blobkey.RungOf(uriPath(uri)), bw, maxKbps) {
				dropping = true
				continue
			}
			kept++
		case bytes.HasPrefix(text, tagIFrameStreamInf):
			attrs := text[len(tagIFrameStreamInf):]
			bw := attrInt(attrs, "AVERAGE-BANDWIDTH")
			if bw == 0 {
				bw = attrInt(attrs, "BANDWIDTH")
			}
			if !keepVariant(blobkey.RungOf(uriPath(attr(attrs, "URI"))), bw, maxKbps) {
				continue
			}
		case bytes.HasPrefix(text, tagMedia):
			if uri := attr(text[len(tagMedia):], "URI"); len(uri) > 0 && !keepVariant(blobkey.RungOf(uriPath(uri)), 0, maxKbps) {
				continue
			}
		}
		out = append(out, whole...)
	}
	return out, kept
}

// nextURI returns the first line of rest that is neither blank nor a tag
// or comment: the URI line of a variant.
func nextURI(rest []byte) []byte {
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) > 0 && line[0] != '#' {
			return line
		}
	}
	return nil
}

// uriPath returns a (relative) URI without its query or fragment, for
// blobkey.RungOf, which reads the last path segment.
func uriPath(uri []byte) []byte {
	if i := bytes.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	return uri
}

// attr returns the value of name in an HLS attribute list (RFC 8216
// §4.2), unquoted, or nil.
func attr(list []byte, name string) []byte {
	for len(list) > 0 {
		eq := bytes.IndexByte(list, '=')
		if eq < 0 {
			return nil
		}
		n := bytes.TrimSpace(list[:eq])
		list = list[eq+1:]
		var v []byte
		if len(list) > 0 && list[0] == '"' {
			end := bytes.IndexByte(list[1:], '"')
			if end < 0 {
				return nil
			}
			v = list[1 : 1+end]
			list = list[2+end:]
			if i := bytes.IndexByte(list, ','); i >= 0 {
				list = list[i+1:]
			} else {
				list = nil
			}
		} else {
			end := bytes.IndexByte(list, ',')
			if end < 0 {
				v, list = list, nil
			} else {
				v, list = list[:end], list[end+1:]
			}
			v = bytes.TrimSpace(v)
		}
		if string(n) == name {
			return v
		}
	}
	return nil
}

func attrInt(list []byte, name string) int64 {
	n, err := strconv.ParseInt(string(attr(list, name)), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// errBadMPD: the MPD is not well-formed XML.
var errBadMPD = errors.New("edge: malformed MPD")

// filterMPD removes from a DASH MPD the Representations above maxKbps, and
// every AdaptationSet left without a Representation. It works on the
// decoder's byte offsets and cuts the original text, so kept elements,
// namespaces and formatting are untouched. It returns the filtered text and
// the number of Representations kept.
func filterMPD(src []byte, maxKbps int) ([]byte, int, error) {
	d := xml.NewDecoder(bytes.NewReader(src))
	type span struct{ start, end int64 }
	var (
		cuts    []span
		kept    int
		inSet   bool
		setAt   int64
		setCuts int // len(cuts) when the AdaptationSet began
		setReps int
		setKept int
		inRep   bool
		repAt   int64
		repRung int
		repBW   int64
		inBase  bool
		base    []byte
	)
	for {
		at := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, errBadMPD
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "AdaptationSet":
				inSet, setAt, setCuts, setReps, setKept = true, at, len(cuts), 0, 0
			case "Representation":
				inRep, repAt, repRung, repBW, base = true, at, 0, 0, nil
				for _, a := range t.Attr {
					switch a.Name.Local {
					case "id":
						repRung = blobkey.RungOf(a.Value)
					case "bandwidth":
						repBW, _ = strconv.ParseInt(a.Value, 10, 64)
					}
				}
			case "BaseURL":
				inBase = inRep
			}
		case xml.CharData:
			if inBase {
				base = append(base, t...)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "BaseURL":
				inBase = false
			case "Representation":
				if !inRep {
					break
				}
				inRep = false
				rung := repRung
				if r := blobkey.RungOf(uriPath(bytes.TrimSpace(base))); r > 0 {
					rung = r
				}
				setReps++
				if keepVariant(rung, repBW, maxKbps) {
					kept++
					setKept++
				} else {
					cuts = append(cuts, span{lineStart(src, repAt), d.InputOffset()})
				}
			case "AdaptationSet":
				if inSet && setReps > 0 && setKept == 0 {
					cuts = append(cuts[:setCuts], span{lineStart(src, setAt), d.InputOffset()})
				}
				inSet = false
			}
		}
	}
	if len(cuts) == 0 {
		return src, kept, nil
	}
	out := make([]byte, 0, len(src))
	prev := int64(0)
	for _, c := range cuts {
		out = append(out, src[prev:c.start]...)
		prev = c.end
	}
	return append(out, src[prev:]...), kept, nil
}

// lineStart moves a cut's start back over the indentation before it, to
// the newline that ends the previous line, so the cut takes its line away.
func lineStart(src []byte, at int64) int64 {
	i := at
	for i > 0 && (src[i-1] == ' ' || src[i-1] == '\t') {
		i--
	}
	if i > 0 && src[i-1] == '\n' {
		i--
		if i > 0 && src[i-1] == '\r' {
			i--
		}
		return i
	}
	return at
}

// errTooLarge: a playlist bigger than Config.MaxPlaylistBytes.
var errTooLarge = errors.New("edge: playlist too large")

// servePlaylist answers a playlist or MPD, cached whole. master.m3u8 and
// MPDs are filtered to the token's bitrate ceiling (see playlist.go); the
// filtered bytes are cached per ceiling.
func (s *Server) servePlaylist(ctx *fasthttp.RequestCtx, key []byte, kind blobkey.Kind, maxKbps int) {
	name := s.cache.Name(key)
	e, hit := s.cache.Get(name, cache.KindWhole, 0)
	if !hit {
		keyStr := string(key)
		if !validKey(keyStr) {
			s.badPath(ctx)
			return
		}
		if s.knownMissing(name) {
			s.notFound(ctx)
			return
		}
		var err error
		if e, err = s.fetchWholeCoalesced(ctx, keyStr, name); err != nil {
			s.fail(ctx, err)
			return
		}
	}
	cc := vImmutable
	if kind == blobkey.KindMaster || kind == blobkey.KindMPD {
		cc = s.ccPlaylist
		if maxKbps > 0 {
			fe, ok := s.cache.Get(name, cache.KindFiltered, int64(maxKbps))
			if !ok {
				var err error
				if fe, err = s.filter(name, e, kind, maxKbps); err != nil {
					s.fail(ctx, err)
					return
				}
			}
			if fe.Meta == nil { // nothing this tier may play
				s.refuse(ctx, reasonTier)
				return
			}
			e = fe
		}
	}
	status, r := plan(&ctx.Request.Header, e.Meta)
	if s.answerBodyless(ctx, status, e.Meta, r, cc, sourceOf(hit)) {
		return
	}
	s.writeHead(ctx, status, e.Meta, r, cc, sourceOf(hit))
	ctx.Response.SetBodyRaw(e.Data[r.Start : r.Start+r.Length])
	s.count(sourceOf(hit), r.Length)
}

// filter makes and caches the filtered form of a playlist entry. An entry
// with nil Meta records that nothing is left.
func (s *Server) filter(name cache.Name, e *cache.Entry, kind blobkey.Kind, maxKbps int) (*cache.Entry, error) {
	var out []byte
	var kept int
	if kind == blobkey.KindMaster {
		out, kept = filterMaster(e.Data, maxKbps)
		if kept < 0 { // not a multivariant playlist: nothing to filter
			return e, nil
		}
	} else {
		var err error
		if out, kept, err = filterMPD(e.Data, maxKbps); err != nil {
			return nil, err
		}
	}
	fe := &cache.Entry{}
	if kept > 0 {
		m := *e.Meta
		m.Size = int64(len(out))
		m.ETag = tierETag(e.Meta.ETag, maxKbps)
		fe.Data, fe.Meta = out, &m
	}
	s.cache.Set(name, cache.KindFiltered, int64(maxKbps), fe)
	return fe, nil
}

// tierETag derives the validator of a filtered playlist from the
// original's: "abc" becomes "abc-mbr128" (weakness is kept).
func tierETag(etag string, maxKbps int) string {
	if len(etag) < 2 || etag[len(etag)-1] != '"' {
		return etag
	}
	b := make([]byte, 0, len(etag)+12)
	b = append(b, etag[:len(etag)-1]...)
	b = append(b, "-mbr"...)
	b = appendInt(b, int64(maxKbps))
	return string(append(b, '"'))
}

func appendInt(b []byte, n int64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}
