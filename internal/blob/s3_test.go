package blob

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const testBucket = "riff-test"

// fakeS3 is an in-memory S3 server behind a real listener.
type fakeS3 struct {
	srv *httptest.Server
	// wrap, if set, sees every request before the fake does.
	wrap atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
	// parts counts UploadPart requests.
	parts atomic.Int64
}

// newFakeS3 starts a fake S3 with the test bucket and points the SDK's
// default credential chain at static test credentials (and nothing else on
// this machine).
func newFakeS3(t *testing.T) *fakeS3 {
	t.Helper()
	noFile := filepath.Join(t.TempDir(), "none")
	t.Setenv("AWS_ACCESS_KEY_ID", "test-key")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", noFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", noFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")

	mem := s3mem.New()
	if err := mem.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(mem).Server()
	f := &fakeS3{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("partNumber") {
			f.parts.Add(1)
		}
		if wrap := f.wrap.Load(); wrap != nil && !(*wrap)(w, r) {
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeS3) newStore(t *testing.T) *S3 {
	t.Helper()
	s, err := NewS3(t.Context(), testBucket, S3Options{
		Region:    "us-east-1",
		Endpoint:  f.srv.URL,
		PathStyle: true,
		PartSize:  5 * MiB,
	})
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}

func TestS3(t *testing.T) {
	testStore(t, func(t *testing.T) backend {
		s := newFakeS3(t).newStore(t)
		return backend{Store: s, leftovers: func(t *testing.T) []string { return s3Leftovers(t, s) }}
	})
}

// s3Leftovers lists unfinished multipart uploads and objects whose keys List
// would hide.
func s3Leftovers(t *testing.T, s *S3) []string {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	var left []string
	ups, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.bucket)})
	if isAPIError(err, "NoSuchUpload") {
		// gofakes3's answer when a bucket never had an upload.
		ups, err = &s3.ListMultipartUploadsOutput{}, nil
	}
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	for _, u := range ups.Uploads {
		left = append(left, "upload "+aws.ToString(u.UploadId)+" of "+aws.ToString(u.Key))
	}
	objs, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.bucket)})
	if err != nil {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	for _, o := range objs.Contents {
		if ValidateKey(aws.ToString(o.Key)) != nil {
			left = append(left, "object "+aws.ToString(o.Key))
		}
	}
	return left
}

// TestS3Multipart checks that a Put larger than the part size really goes
// in parts, and that Get of it works.
func TestS3Multipart(t *testing.T) {
	f := newFakeS3(t)
	s := f.newStore(t)
	data := content(7, largeSize)
	info := mustPut(t, s, "originals/1/big.wav", data, PutOptions{})
	if n := f.parts.Load(); n != 3 {
		t.Errorf("Put of %d bytes with 5 MiB parts sent %d parts, want 3", largeSize, n)
	}
	if !strings.HasSuffix(info.ETag, `-3"`) {
		t.Errorf("Put ETag = %s, want S3's multipart form \"…-3\"", info.ETag)
	}
	got, ginfo := mustGet(t, s, "originals/1/big.wav", nil)
	if !bytes.Equal(got, data) || ginfo.Size != largeSize || ginfo.ContentType != "audio/wav" {
		t.Errorf("Get = %d bytes, %+v; want the %d bytes put, %+v", len(got), ginfo, largeSize, info)
	}
}

// TestS3IgnoredRange: a server that answers a Range request with the whole
// object must make Get fail, not return the wrong bytes.
func TestS3IgnoredRange(t *testing.T) {
	f := newFakeS3(t)
	s := f.newStore(t)
	mustPut(t, s, "a.mp4", []byte("0123456789"), PutOptions{})
	dropRange := func(w http.ResponseWriter, r *http.Request) bool {
		r.Header.Del("Range")
		return true
	}
	f.wrap.Store(&dropRange)
	rc, _, err := s.Get(t.Context(), "a.mp4", &Range{2, 3})
	if err == nil {
		rc.Close()
		t.Fatalf("Get with the Range ignored succeeded")
	}
	if !strings.Contains(err.Error(), "Content-Range") {
		t.Errorf("Get error = %v, want it to mention Content-Range", err)
	}
}

// TestS3Errors: failures other than the known kinds stay distinct.
func TestS3Errors(t *testing.T) {
	f := newFakeS3(t)
	s, err := NewS3(t.Context(), "no-such-bucket", S3Options{Endpoint: f.srv.URL, PathStyle: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(t.Context(), "a", strings.NewReader("x"), PutOptions{})
	if err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Put into a missing bucket: error %v, want a non-ErrNotFound error", err)
	}
	for _, err := range s.List(t.Context(), "") {
		if err == nil || errors.Is(err, ErrNotFound) {
			t.Errorf("List of a missing bucket: error %v, want a non-ErrNotFound error", err)
		}
	}
	if _, err := NewS3(t.Context(), "", S3Options{}); err == nil {
		t.Errorf("NewS3 with no bucket succeeded")
	}
	if _, err := NewS3(t.Context(), "b", S3Options{PartSize: 1 << 20}); err == nil {
		t.Errorf("NewS3 with 1 MiB parts succeeded")
	}
}

func TestHTTPRange(t *testing.T) {
	for _, tc := range []struct {
		rng  Range
		want string
	}{
		{Range{0, 10}, "bytes=0-9"},
		{Range{5, 1}, "bytes=5-5"},
		{Range{7, -1}, "bytes=7-"},
		{Range{1, 1<<63 - 1}, "bytes=1-"},
		{Range{0, 1<<63 - 1}, "bytes=0-9223372036854775806"},
	} {
		if got := httpRange(tc.rng); got != tc.want {
			t.Errorf("httpRange(%+v) = %q, want %q", tc.rng, got, tc.want)
		}
	}
}
