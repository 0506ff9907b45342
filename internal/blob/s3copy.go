package blob

import (
	"context"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// SameService reports whether o's bucket is on the same S3 service as s's
// (the same endpoint and region), so that CopyFrom can copy between them
// server-side. Both stores must use credentials that may read o's bucket
// and write s's.
func (s *S3) SameService(o *S3) bool { return s.service == o.service }

// maxCopyObject is the largest object one CopyObject request copies (S3's
// limit; larger ones need a multipart copy).
const maxCopyObject = 5 << 30

// CopyFrom copies key from src into s server-side (CopyObject: the bytes
// never leave the service) when src is an S3 store on the same service,
// and reports whether it did. It returns false and no error when src is
// another kind of store, another service's, or the object is larger than
// one CopyObject may copy: the caller then streams the bytes itself.
func (s *S3) CopyFrom(ctx context.Context, src Store, key string) (Info, bool, error) {
	o, ok := src.(*S3)
	if !ok || !s.SameService(o) {
		return Info{}, false, nil
	}
	if err := ValidateKey(key); err != nil {
		return Info{}, false, opErr("copy", key, err)
	}
	srcInfo, err := o.Stat(ctx, key)
	if err != nil {
		return Info{}, false, err
	}
	if srcInfo.Size > maxCopyObject {
		return Info{}, false, nil
	}
	// x-amz-copy-source is "bucket/key", URL-encoded (slashes kept).
	source := (&url.URL{Path: o.bucket + "/" + key}).EscapedPath()
	if _, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(key), CopySource: aws.String(source),
	}); err != nil {
		return Info{}, false, opErr("copy", key, s3Err(err))
	}
	info, err := s.Stat(ctx, key)
	if err != nil {
		return Info{}, false, err
	}
	return info, true, nil
}
