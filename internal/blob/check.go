package blob

import (
	"context"
	"errors"

	"riff/internal/blobkey"
)

// checkKey is a key nothing publishes: Check's Stat expects it missing.
const checkKey = blobkey.Root + "_readyz"

// Check reports whether s can be used, for readiness checks (/readyz). A
// store with a Check method of its own answers with it: S3 lists at most
// one key, so a missing bucket, wrong credentials or a missing permission
// fail with the server's own word for it (NoSuchBucket,
// InvalidAccessKeyId, SignatureDoesNotMatch, AccessDenied). Any other store
// answers a Stat of a key nothing publishes, which must find nothing.
func Check(ctx context.Context, s Store) error {
	if c, ok := s.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	if _, err := s.Stat(ctx, checkKey); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}
