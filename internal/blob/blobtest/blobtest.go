// Package blobtest holds test servers for package blob's stores and their
// users' tests. It imports no riff package (blob's own tests use it).
package blobtest

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is an in-memory S3 service on a loopback listener that counts the
// object writes it receives, closed when the test ends.
type S3 struct {
	URL string
	// Copies counts server-side copies (PUT with X-Amz-Copy-Source),
	// Uploads the other PUTs.
	Copies, Uploads atomic.Int64
}

// NewS3 starts an S3 service holding the empty buckets, and sets the
// credentials the AWS SDK reads for the rest of the test.
func NewS3(t *testing.T, buckets ...string) *S3 {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	mem := s3mem.New()
	for _, b := range buckets {
		if err := mem.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	fake := gofakes3.New(mem).Server()
	s := &S3{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				s.Copies.Add(1)
			} else {
				s.Uploads.Add(1)
			}
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}
