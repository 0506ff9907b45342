package blob

import (
	"fmt"
	"path"
	"strings"

	"riff/internal/blobkey"
)

const (
	// MaxKeyLen is the longest key in bytes (S3's limit).
	MaxKeyLen = blobkey.MaxLen
	// MaxSegmentLen is the longest segment of a key in bytes.
	MaxSegmentLen = blobkey.MaxSegmentLen
)

// ValidateKey reports whether key is a well-formed object key; see
// blobkey.Validate for the rules. The error wraps ErrInvalidKey.
func ValidateKey(key string) error { return blobkey.Validate(key) }

// ValidatePrefix reports whether prefix may be passed to Store.List; see
// blobkey.ValidatePrefix. The error wraps ErrInvalidKey.
func ValidatePrefix(prefix string) error { return blobkey.ValidatePrefix(prefix) }

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
