// Package blobkey holds the blob-key layout (layout.go: folders, rendition
// file names and their parsing, originals) and the rules for a valid key. It
// must not import anything outside the standard library, so the edge can use
// it without linking a storage client; package blob re-exports the rules.
package blobkey

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every error Validate and ValidatePrefix return.
var ErrInvalid = errors.New("blob: invalid key")

const (
	// MaxLen is the longest key in bytes (S3's limit).
	MaxLen = 1024
	// MaxSegmentLen is the longest segment (the text between slashes) in
	// bytes: NAME_MAX of common filesystems, so every key fits the FS store.
	MaxSegmentLen = 255
)

// Validate reports whether key is a well-formed object key. It is the one
// place that decides; every blob.Store calls it before touching storage.
//
// A key is 1 to MaxLen bytes of valid UTF-8 made of segments separated by
// single slashes. It must not start or end with a slash, and must not contain
// a backslash, NUL or any other control character. Every segment is 1 to
// MaxSegmentLen bytes and must not begin with a dot: that rules out "." and
// ".." and also reserves dot names for the FS store's own bookkeeping files
// (temporary and metadata files), so they can never clash with an object.
//
// The error wraps ErrInvalid and says what is wrong.
func Validate(key string) error {
	if reason := keyProblem(key); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalid, truncate(key), reason)
	}
	return nil
}

// ValidatePrefix reports whether prefix may be passed to Store.List. The
// empty prefix (everything) is valid. Otherwise prefix follows the rules of
// Validate, except that it may end with one slash. A prefix need not end
// at a segment boundary: "artists/1" matches "artists/1/…" and "artists/10/…",
// while "artists/1/" matches only the first.
//
// The error wraps ErrInvalid and says what is wrong.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	reason := ""
	if prefix == "/" {
		reason = "starts with /"
	} else {
		reason = keyProblem(strings.TrimSuffix(prefix, "/"))
	}
	if reason != "" {
		return fmt.Errorf("%w: prefix %q: %s", ErrInvalid, truncate(prefix), reason)
	}
	return nil
}

// keyProblem returns why key is not a valid key, or "" if it is.
func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > MaxLen:
		return "longer than " + strconv.Itoa(MaxLen) + " bytes"
	case !utf8.ValidString(key):
		return "not valid UTF-8"
	case key[0] == '/':
		return "starts with /"
	case key[len(key)-1] == '/':
		return "ends with /"
	}
	for _, r := range key {
		switch {
		case r == '\\':
			return "contains a backslash"
		case r == 0:
			return "contains NUL"
		case unicode.IsControl(r):
			return "contains control character " + strconv.QuoteRune(r)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		switch {
		case seg == "":
			return "has an empty segment"
		case seg == "." || seg == "..":
			return "has a " + strconv.Quote(seg) + " segment"
		case seg[0] == '.':
			return "has a segment starting with a dot"
		case len(seg) > MaxSegmentLen:
			return "has a segment longer than " + strconv.Itoa(MaxSegmentLen) + " bytes"
		}
	}
	return ""
}

// truncate shortens s for error messages.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// Unescape percent-decodes src, the key part of a request path, appending
// the result to dst ('+' is not special in a path). It fails on a malformed
// escape or when allow refuses a decoded byte: each server decides which
// bytes may arrive escaped (the edge only unreserved ones, never '/').
// Literal bytes are copied as they are; the caller validates the result.
func Unescape(dst, src []byte, allow func(byte) bool) ([]byte, bool) {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c == '%' {
			if i+2 >= len(src) {
				return nil, false
			}
			hi, ok1 := unhex(src[i+1])
			lo, ok2 := unhex(src[i+2])
			if !ok1 || !ok2 {
				return nil, false
			}
			c = hi<<4 | lo
			if !allow(c) {
				return nil, false
			}
			i += 2
		}
		dst = append(dst, c)
	}
	return dst, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
