package blobkey

import "strconv"

// Album covers (public, immutable):
//
//	artists/{a}/albums/{b}/covers/{hash}/{size}.jpg    one square size of one cover
//	/covers/{a}/{b}/{hash}/{size}.jpg                  its public path at the edge
//
// {hash} is CoverHashLen lowercase hex digits of a content hash (a new
// image is a new folder, never an overwrite), {size} one of CoverSizes.
// The cover folder artists/{a}/albums/{b}/covers/{hash}/ sits at the depth
// of a song folder, so it is a purge folder of its own: replacing a cover
// purges exactly the old one (PurgeFolder accepts it).
//
// The edge serves these keys without a playback token, and only these:
// CoverKeyOfPath is the one parser of the public path, and it accepts
// nothing but the shape above.

// CoverPathPrefix starts the public path of every cover at the edge.
const CoverPathPrefix = "/covers/"

// CoverHashLen is the length of a cover's hash in hex digits (128 bits).
const CoverHashLen = 32

// CoverSizes are the square sizes in pixels every cover is stored at,
// smallest first.
var CoverSizes = [...]int{64, 300, 640}

// coversName is the segment between the album folder and the cover folders.
const coversName = "covers/"

// coverExt is the extension of every stored cover: covers are re-encoded as
// JPEG.
const coverExt = ".jpg"

// ValidCoverHash reports whether h is CoverHashLen lowercase hex digits.
func ValidCoverHash(h string) bool {
	if len(h) != CoverHashLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidCoverSize reports whether n is one of CoverSizes.
func ValidCoverSize(n int) bool {
	for _, s := range CoverSizes {
		if s == n {
			return true
		}
	}
	return false
}

// CoverFolder returns "artists/{artistID}/albums/{albumID}/covers/{hash}/",
// the folder of one cover's sizes and the purge prefix that drops it.
func CoverFolder(artistID, albumID int64, hash string) string {
	b := append(appendAlbum(make([]byte, 0, 96), artistID, albumID), coversName...)
	b = append(b, hash...)
	return string(append(b, '/'))
}

// CoverKey returns the key of one size of a cover,
// "artists/{artistID}/albums/{albumID}/covers/{hash}/{size}.jpg".
func CoverKey(artistID, albumID int64, hash string, size int) string {
	return CoverFolder(artistID, albumID, hash) + strconv.Itoa(size) + coverExt
}

// CoverPath returns the public path of one size of a cover at the edge,
// "/covers/{artistID}/{albumID}/{hash}/{size}.jpg".
func CoverPath(artistID, albumID int64, hash string, size int) string {
	b := append(make([]byte, 0, 80), CoverPathPrefix...)
	b = strconv.AppendInt(b, artistID, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, albumID, 10)
	b = append(b, '/')
	b = append(b, hash...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(size), 10)
	return string(append(b, coverExt...))
}

// maxIDDigits bounds an id segment of a cover path (int64 has 19 digits).
const maxIDDigits = 19

// CoverKeyOfPath reads a public cover path exactly as the client sent it
// (no decoding: a cover path has nothing to escape, so any '%' is refused)
// and appends the blob key it names to dst. It reports false unless p is
// "/covers/{a}/{b}/{hash}/{size}.jpg" with a and b positive decimal ids
// without leading zeros, hash as ValidCoverHash wants it and size one of
// CoverSizes: one spelling per key, and nothing outside cover folders.
func CoverKeyOfPath[S ~string | ~[]byte](dst []byte, p S) ([]byte, bool) {
	if len(p) < len(CoverPathPrefix) || string(p[:len(CoverPathPrefix)]) != CoverPathPrefix {
		return nil, false
	}
	rest := p[len(CoverPathPrefix):]
	var segs [4]S
	for i := range segs {
		j := 0
		for j < len(rest) && rest[j] != '/' {
			j++
		}
		if i < len(segs)-1 && j == len(rest) {
			return nil, false
		}
		segs[i] = rest[:j]
		if j < len(rest) {
			rest = rest[j+1:]
		} else {
			rest = rest[:0]
		}
	}
	if len(rest) != 0 || !decimalID(segs[0]) || !decimalID(segs[1]) || !ValidCoverHash(string(segs[2])) {
		return nil, false
	}
	name := segs[3]
	if !hasSuffix(name, coverExt) {
		return nil, false
	}
	size := name[:len(name)-len(coverExt)]
	if !decimalID(size) {
		return nil, false
	}
	n, err := strconv.Atoi(string(size))
	if err != nil || !ValidCoverSize(n) {
		return nil, false
	}
	dst = append(dst, Root...)
	dst = append(dst, segs[0]...)
	dst = append(dst, "/albums/"...)
	dst = append(dst, segs[1]...)
	dst = append(dst, '/')
	dst = append(dst, coversName...)
	dst = append(dst, segs[2]...)
	dst = append(dst, '/')
	dst = append(dst, name...)
	return dst, true
}

// decimalID reports whether s is 1 to maxIDDigits decimal digits without a
// leading zero.
func decimalID[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 || len(s) > maxIDDigits || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
