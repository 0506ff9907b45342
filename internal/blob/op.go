package blob

import (
	"context"
	"fmt"
	"io"
	"mime"
	"strings"
)

// opError is the error of one Store operation on one key (or prefix). It
// reads "blob: get a/b.mp4: object not found" and unwraps to the cause, so
// errors.Is finds ErrNotFound and friends, and context.Canceled.
type opError struct {
	op, key string
	err     error
}

func opErr(op, key string, err error) error { return &opError{op, key, err} }

func (e *opError) Error() string {
	return "blob: " + e.op + " " + e.key + ": " + strings.TrimPrefix(e.err.Error(), "blob: ")
}

func (e *opError) Unwrap() error { return e.err }

// ctxReader fails reads once ctx is done, so a long copy stops promptly when
// the caller gives up.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// putContentType returns the content type a Put stores: the explicit one,
// checked to be a well-formed media type (it ends up in HTTP headers), or the
// one ContentTypeFor derives from the key.
func putContentType(key string, opts PutOptions) (string, error) {
	if opts.ContentType == "" {
		return ContentTypeFor(key), nil
	}
	if _, _, err := mime.ParseMediaType(opts.ContentType); err != nil {
		return "", opErr("put", key, fmt.Errorf("content type %q: %w", opts.ContentType, err))
	}
	return opts.ContentType, nil
}
