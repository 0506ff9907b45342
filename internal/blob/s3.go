//lint:file-ignore SA1019 feature/s3/manager is deprecated for transfermanager, which is still v0.x; the manager is the stable, tested uploader (see doc.go).

package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"riff/internal/httprange"
)

// S3Options configures NewS3. The zero value talks to AWS in the region the
// SDK's default configuration names.
type S3Options struct {
	// Region overrides the region from the environment and shared config.
	// If neither names one, "us-east-1" is used.
	Region string
	// Endpoint is the base URL of an S3-compatible service, e.g.
	// "http://127.0.0.1:9000" for MinIO. Empty means AWS.
	Endpoint string
	// PathStyle addresses buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key, as most S3-compatible services need.
	PathStyle bool
	// PartSize is the size of each part of a multipart upload, at least
	// 5 MiB (S3's minimum). Objects no larger than this are sent with one
	// PutObject. Zero means manager.DefaultUploadPartSize (5 MiB). Each
	// Put buffers up to (concurrency+1) parts in memory.
	PartSize int64
	// HTTPClient, if set, sends the requests (timeouts, proxies, TLS).
	HTTPClient *http.Client
}

// abortTimeout bounds the clean-up of a failed multipart upload, which runs
// after the caller's context may have been cancelled.
const abortTimeout = 30 * time.Second

// S3 is a Store in an S3 bucket (AWS or any S3-compatible service), using
// aws-sdk-go-v2. Keys are used as object keys unchanged.
//
// S3 is safe for concurrent use.
type S3 struct {
	bucket   string
	client   *s3.Client
	uploader *manager.Uploader
	service  string // endpoint and region: buckets of one service can copy server-side (s3copy.go)
}

var _ Store = (*S3)(nil)

// NewS3 returns a store for bucket. Credentials come from the SDK's default
// chain (environment, shared files, SSO, web identity, container and
// instance roles), resolved lazily on the first request; ctx is used only
// while loading configuration. NewS3 sends no requests: a missing bucket or
// bad credentials show up as errors from the first call.
func NewS3(ctx context.Context, bucket string, opts S3Options) (*S3, error) {
	if bucket == "" {
		return nil, errors.New("blob: NewS3: empty bucket name")
	}
	if opts.PartSize != 0 && opts.PartSize < manager.MinUploadPartSize {
		return nil, fmt.Errorf("blob: NewS3: part size %d is below S3's minimum %d", opts.PartSize, manager.MinUploadPartSize)
	}
	var load []func(*config.LoadOptions) error
	if opts.Region != "" {
		load = append(load, config.WithRegion(opts.Region))
	}
	if opts.HTTPClient != nil {
		load = append(load, config.WithHTTPClient(opts.HTTPClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("blob: NewS3 %s: load AWS config: %w", bucket, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.UsePathStyle = opts.PathStyle
		// Get asks for (and the SDK verifies) the stored checksum when it
		// reads a whole object; a range has none to check against.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		// Multipart objects carry no whole-object checksum; that is
		// expected, not worth a warning per request.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	uploader := manager.NewUploader(client, func(u *manager.Uploader) {
		if opts.PartSize != 0 {
			u.PartSize = opts.PartSize
		}
		// We abort failed uploads ourselves, with a context that outlives
		// the caller's (see Put); the uploader's own attempt is harmless.
		u.LeavePartsOnError = false
	})
	return &S3{bucket: bucket, client: client, uploader: uploader, service: opts.Endpoint + " " + cfg.Region}, nil
}

// Bucket returns the bucket's name.
func (s *S3) Bucket() string { return s.bucket }

// Put implements Store. Objects larger than the part size are sent as a
// multipart upload; if it fails or ctx is cancelled, the upload is aborted so
// no parts are left behind (billed and invisible). The returned ModTime is
// the local time the upload completed.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, opts PutOptions) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	ct, err := putContentType(key, opts)
	if err != nil {
		return Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return Info{}, opErr("put", key, err)
	}
	body := &countingReader{r: ctxReader{ctx, r}}
	out, err := s.uploader.Upload(ctx, &s3.PutObjectInput{
		Bucket:      aws.String(s.bucket),
		Key:         aws.String(key),
		Body:        body,
		ContentType: aws.String(ct),
	})
	if err != nil {
		// The uploader aborts with the caller's context, which does not
		// work once that is cancelled. Abort again with one that does.
		var mu manager.MultiUploadFailure
		if errors.As(err, &mu) && mu.UploadID() != "" {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			_, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
				Bucket:   aws.String(s.bucket),
				Key:      aws.String(key),
				UploadId: aws.String(mu.UploadID()),
			})
			cancel()
			if aerr != nil && !isAPIError(aerr, "NoSuchUpload") {
				err = errors.Join(err, fmt.Errorf("abort multipart upload %s: %w", mu.UploadID(), aerr))
			}
		}
		// Prefer the caller's reason: the SDK words it many ways.
		if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return Info{}, opErr("put", key, err)
	}
	return Info{
		Key:         key,
		Size:        body.n,
		ETag:        aws.ToString(out.ETag),
		ContentType: ct,
		ModTime:     time.Now(),
	}, nil
}

// countingReader counts the bytes read through it. The uploader reads from
// one goroutine.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Get implements Store. A range is sent as an HTTP Range header; the
// response must honour it (Content-Range), or Get fails rather than hand out
// the wrong bytes.
func (s *S3) Get(ctx context.Context, key string, rng *Range) (io.ReadCloser, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, err
	}
	if err := checkRange(rng); err != nil {
		return nil, Info{}, opErr("get", key, err)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}
	if rng != nil {
		in.Range = aws.String(httpRange(*rng))
	} else {
		in.ChecksumMode = types.ChecksumModeEnabled
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, Info{}, opErr("get", key, s3Err(err))
	}
	info := Info{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ETag:        aws.ToString(out.ETag),
		ContentType: aws.ToString(out.ContentType),
		ModTime:     aws.ToTime(out.LastModified),
	}
	if rng != nil {
		cr, ok := httprange.ParseContentRange([]byte(aws.ToString(out.ContentRange)))
		if !ok || cr.Unsatisfied() || cr.Size < 0 || cr.Start != rng.Off {
			out.Body.Close()
			return nil, Info{}, opErr("get", key, fmt.Errorf("server answered Range %q with Content-Range %q",
				aws.ToString(in.Range), aws.ToString(out.ContentRange)))
		}
		info.Size = cr.Size
	}
	return out.Body, info, nil
}

// httpRange formats rng (already checked by checkRange) as a Range header.
func httpRange(rng Range) string {
	if rng.Len < 0 || rng.Len > maxInt64-rng.Off {
		return "bytes=" + strconv.FormatInt(rng.Off, 10) + "-"
	}
	return "bytes=" + strconv.FormatInt(rng.Off, 10) + "-" + strconv.FormatInt(rng.Off+rng.Len-1, 10)
}

const maxInt64 = 1<<63 - 1

// Stat implements Store with HeadObject.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		return Info{}, opErr("stat", key, s3Err(err))
	}
	return Info{
		Key:         key,
		Size:        aws.ToInt64(out.ContentLength),
		ETag:        aws.ToString(out.ETag),
		ContentType: aws.ToString(out.ContentType),
		ModTime:     aws.ToTime(out.LastModified),
	}, nil
}

// Delete implements Store. S3 reports success for a missing key.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)})
	if err != nil {
		if err := s3Err(err); errors.Is(err, ErrNotFound) {
			return nil
		}
		return opErr("delete", key, s3Err(err))
	}
	return nil
}

// List implements Store with the ListObjectsV2 paginator. General-purpose
// buckets list in UTF-8 byte order, which is the order List promises;
// directory buckets (S3 Express) do not and are not supported.
func (s *S3) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		if err := ValidatePrefix(prefix); err != nil {
			yield(Info{}, err)
			return
		}
		in := &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)}
		if prefix != "" {
			in.Prefix = aws.String(prefix)
		}
		p := s3.NewListObjectsV2Paginator(s.client, in)
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				yield(Info{}, opErr("list", prefix, s3Err(err)))
				return
			}
			for _, o := range page.Contents {
				key := aws.ToString(o.Key)
				if ValidateKey(key) != nil {
					continue // e.g. a console "folder" marker "a/b/"
				}
				info := Info{
					Key:     key,
					Size:    aws.ToInt64(o.Size),
					ETag:    aws.ToString(o.ETag),
					ModTime: aws.ToTime(o.LastModified),
				}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

// Check lists at most one key of the bucket, for readiness checks (see the
// package's Check). Unlike a HEAD, whose answer has no body, a listing's
// error names the reason: NoSuchBucket, InvalidAccessKeyId,
// SignatureDoesNotMatch, AccessDenied (grant s3:ListBucket, which Stat
// needs anyway to tell a missing object from a forbidden one).
func (s *S3) Check(ctx context.Context) error {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket:  aws.String(s.bucket),
		Prefix:  aws.String(checkKey),
		MaxKeys: aws.Int32(1),
	})
	if err != nil {
		return fmt.Errorf("blob: bucket %s: %w", s.bucket, err)
	}
	return nil
}

// s3Err maps S3's answers to the package's error kinds, keeping the original
// in the chain.
func s3Err(err error) error {
	var status interface{ HTTPStatusCode() int }
	code := 0
	if errors.As(err, &status) {
		code = status.HTTPStatusCode()
	}
	switch {
	case isAPIError(err, "NoSuchKey"), isAPIError(err, "NotFound"):
		// NotFound is what HeadObject's body-less 404 becomes.
		return fmt.Errorf("%w (%w)", ErrNotFound, err)
	case code == http.StatusRequestedRangeNotSatisfiable, isAPIError(err, "InvalidRange"):
		return fmt.Errorf("%w (%w)", ErrInvalidRange, err)
	}
	return err
}

func isAPIError(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}
