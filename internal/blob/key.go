package blob

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

const (
	// MaxKeyLen is the longest key in bytes (S3's limit).
	MaxKeyLen = 1024
	// MaxSegmentLen is the longest segment (the text between slashes) in
	// bytes: NAME_MAX of common filesystems, so every key fits the FS store.
	MaxSegmentLen = 255
)

// ValidateKey reports whether key is a well-formed object key. It is the one
// place that decides; every Store calls it before touching storage.
//
// A key is 1 to MaxKeyLen bytes of valid UTF-8 made of segments separated by
// single slashes. It must not start or end with a slash, and must not contain
// a backslash, NUL or any other control character. Every segment is 1 to
// MaxSegmentLen bytes and must not begin with a dot: that rules out "." and
// ".." and also reserves dot names for the FS store's own bookkeeping files
// (temporary and metadata files), so they can never clash with an object.
//
// The error wraps ErrInvalidKey and says what is wrong.
func ValidateKey(key string) error {
	if reason := keyProblem(key); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, truncate(key), reason)
	}
	return nil
}

// ValidatePrefix reports whether prefix may be passed to Store.List. The
// empty prefix (everything) is valid. Otherwise prefix follows the rules of
// ValidateKey, except that it may end with one slash. A prefix need not end
// at a segment boundary: "artists/1" matches "artists/1/…" and "artists/10/…",
// while "artists/1/" matches only the first.
//
// The error wraps ErrInvalidKey and says what is wrong.
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
		return fmt.Errorf("%w: prefix %q: %s", ErrInvalidKey, truncate(prefix), reason)
	}
	return nil
}

// keyProblem returns why key is not a valid key, or "" if it is.
func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > MaxKeyLen:
		return "longer than " + strconv.Itoa(MaxKeyLen) + " bytes"
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

// contentTypes maps lower-case extensions to the media types Riff serves.
var contentTypes = map[string]string{
	".m3u8": "application/vnd.apple.mpegurl",
	".mpd":  "application/dash+xml",
	".mp4":  "audio/mp4",
	".m4s":  "audio/mp4",
	".m4a":  "audio/mp4",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".mp3":  "audio/mpeg",
	".flac": "audio/flac",
	".wav":  "audio/wav",
	".json": "application/json",
	".jpg":  "image/jpeg",
	".png":  "image/png",
}

// ContentTypeFor returns the media type for key, judged by its extension
// (case-insensitively), or "application/octet-stream" when the extension is
// unknown. It does not consult the system MIME tables, so the answer is the
// same on every machine.
func ContentTypeFor(key string) string {
	if ct, ok := contentTypes[strings.ToLower(path.Ext(key))]; ok {
		return ct
	}
	return "application/octet-stream"
}

// checkRange rejects ranges that are malformed whatever the object's size.
func checkRange(rng *Range) error {
	switch {
	case rng == nil:
		return nil
	case rng.Off < 0:
		return fmt.Errorf("%w: negative offset %d", ErrInvalidRange, rng.Off)
	case rng.Len == 0:
		return fmt.Errorf("%w: zero length", ErrInvalidRange)
	}
	return nil
}

// clampRange resolves rng against an object of the given size and returns the
// offset and length to read.
func clampRange(rng Range, size int64) (off, n int64, err error) {
	if rng.Off >= size {
		return 0, 0, fmt.Errorf("%w: offset %d, object size %d", ErrInvalidRange, rng.Off, size)
	}
	n = size - rng.Off
	if rng.Len > 0 && rng.Len < n {
		n = rng.Len
	}
	return rng.Off, n, nil
}
