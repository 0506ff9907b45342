package blob

import (
	"context"
	"errors"
	"io"
	"iter"
	"time"

	"riff/internal/blobkey"
)

// Errors returned by every Store. Wrapped errors match with errors.Is.
var (
	// ErrNotFound: no object has that key.
	ErrNotFound = errors.New("blob: object not found")
	// ErrInvalidKey: the key breaks the rules of ValidateKey.
	ErrInvalidKey = blobkey.ErrInvalid
	// ErrInvalidRange: the requested range starts at or past the end of
	// the object, or is malformed (negative offset or zero length).
	ErrInvalidRange = errors.New("blob: invalid range")
)

// Info describes a stored object.
type Info struct {
	Key         string
	Size        int64
	ETag        string // quoted strong validator, e.g. "\"9b2cf5…\""
	ContentType string
	ModTime     time.Time
}

// Range selects bytes [Off, Off+Len) of an object. Len < 0 means "to the end".
// A range that runs past the end is cut at the end; one that starts at or past
// the end (so any range of an empty object), has a negative Off or a zero Len
// is ErrInvalidRange.
type Range struct {
	Off int64
	Len int64
}

// PutOptions tunes a Put. The zero value is fine.
type PutOptions struct {
	// ContentType is stored with the object; empty means derive it from
	// the key's extension (see ContentTypeFor).
	ContentType string
}

// Store is a flat key/value store of immutable-ish objects.
// Implementations are safe for concurrent use.
//
// Every method validates its key with ValidateKey (List: its prefix with
// ValidatePrefix) first and returns an error wrapping ErrInvalidKey without
// touching storage when it is bad.
type Store interface {
	// Put writes the whole of r under key. It is atomic: readers see the
	// old object or the new one, never a partial one; a cancelled or failed
	// Put leaves nothing behind (and does not disturb an existing object).
	// Concurrent Puts of one key leave exactly one of the contents.
	// The returned Info describes what was written.
	Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error)
	// Get opens the object, or the byte range rng of it when rng is not nil.
	// The caller must Close the reader. Info describes the whole object
	// (Size is the object's size, not the range's).
	Get(ctx context.Context, key string, rng *Range) (io.ReadCloser, Info, error)
	// Stat describes the object without reading it.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields every object whose key starts with prefix, in
	// lexical key order (byte-wise, as S3 does). An empty prefix lists
	// everything. The iteration stops at the first error, which is yielded
	// last. Breaking out of the loop early is fine.
	//
	// Listed Info carries Key, Size, ETag and ModTime; ContentType is left
	// empty because S3 listings do not return it (use Stat). Stored names
	// that are not valid keys (written by other tools) are skipped.
	List(ctx context.Context, prefix string) iter.Seq2[Info, error]
}
