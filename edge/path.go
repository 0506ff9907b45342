package edge

import (
	"bytes"
	"unsafe"

	"riff/internal/blobkey"
)

// Request paths are /t/{token}/{blob key}.
//
// The edge reads the path exactly as the client sent it
// (URI().PathOriginal(), before fasthttp decodes and normalises it) and
// decides itself, because normalisation resolves "a/../b" and "%2F" into
// something that looks harmless; the edge must refuse such paths instead of
// serving whatever they resolve to. The rules:
//
//   - The token is the second segment, taken verbatim (a JWT is base64url
//     and dots, so it never needs decoding); the verifier judges it.
//   - The key is everything after it, percent-decoded exactly once. A key
//     may only consist of RFC 3986 unreserved characters (A-Z a-z 0-9 - . _
//     ~) and "/" separators. An escape that decodes to anything else (an
//     encoded slash or backslash, NUL, "%", a space, any non-ASCII byte) is
//     refused, so a key has one spelling, and what reaches the origin needs
//     no escaping.
//   - Segments must be non-empty and must not start with "." (which refuses
//     "." and ".." however they were spelled); the key must lie under
//     blobkey.Root, artists/ (the origin serves nothing else); the key then also passes
//     blobkey.Validate, which the miss path checks before the origin.
var pathPrefix = []byte("/t/")

// Album covers are public: /covers/{artist}/{album}/{hash}/{size}.jpg is
// the one path served without a token. blobkey.CoverKeyOfPath is its
// only parser: it maps the path onto a key in an album's cover folder and
// accepts nothing else (no escapes, no dot segments, only the sizes that
// exist), so no other object can be named without a token. A path under
// /covers/ that it refuses is 404, like any path that is not /t/….
var coverPrefix = []byte(blobkey.CoverPathPrefix)

// coverKey returns the blob key of a public cover path (a new slice: the
// caller may keep it), or false when p is not one.
func coverKey(p []byte) ([]byte, bool) {
	if !bytes.HasPrefix(p, coverPrefix) {
		return nil, false
	}
	return blobkey.CoverKeyOfPath(make([]byte, 0, len(p)+32), p)
}

// splitPath splits an original request path into the token and the raw
// (still percent-encoded) key. It reports false unless the path is
// /t/{token}/{non-empty rest}; an empty token is returned as such, for the
// verifier to refuse.
func splitPath(p []byte) (token, rawKey []byte, ok bool) {
	if !bytes.HasPrefix(p, pathPrefix) {
		return nil, nil, false
	}
	p = p[len(pathPrefix):]
	i := bytes.IndexByte(p, '/')
	if i < 0 || i == len(p)-1 {
		return nil, nil, false
	}
	return p[:i], p[i+1:], true
}

// cleanKey decodes raw once and checks it by the rules above. It returns
// raw itself when there is nothing to decode (no allocation), else the
// decoded key appended to dst.
func cleanKey(dst, raw []byte) ([]byte, bool) {
	key := raw
	if bytes.IndexByte(raw, '%') >= 0 {
		var ok bool
		// Only unreserved bytes may arrive escaped: never '/', so an
		// encoded slash is refused.
		if key, ok = blobkey.Unescape(dst[:0], raw, unreserved); !ok {
			return nil, false
		}
	}
	if len(key) > blobkey.MaxLen || !bytes.HasPrefix(key, []byte(blobkey.Root)) {
		return nil, false
	}
	segStart := 0
	for i := 0; i <= len(key); i++ {
		if i < len(key) && key[i] != '/' {
			if !unreserved(key[i]) {
				return nil, false
			}
			continue
		}
		seg := key[segStart:i]
		if len(seg) == 0 || seg[0] == '.' || len(seg) > blobkey.MaxSegmentLen {
			return nil, false
		}
		segStart = i + 1
	}
	// These rules are stricter than blobkey.Validate's, so every key that
	// passes them passes it too (FuzzCleanKey checks that). ValidateKey
	// itself runs on the miss path, before a key reaches the origin or the
	// cache (validKey); a hit is a key that went through it before.
	return key, true
}

// validKey applies the store's own rules: defence in depth on the miss
// path, in case the rules above and blob's ever drift apart.
func validKey(key string) bool { return blobkey.Validate(key) == nil }

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '-', c == '.', c == '_', c == '~':
		return true
	}
	return false
}

// b2s views b as a string without copying. Only for calls that do not keep
// the string beyond their return (b is request memory, reused after the
// handler returns).
func b2s(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
