package replicate

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"riff/internal/blob"
)

// TestCopyObjectS3ServerSide: between buckets of one S3 service the copy
// is server-side (no upload of the bytes) and still verified.
func TestCopyObjectS3ServerSide(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	mem := s3mem.New()
	for _, b := range []string{"home", "far"} {
		if err := mem.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	fake := gofakes3.New(mem).Server()
	var copies, uploads atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				copies.Add(1)
			} else {
				uploads.Add(1)
			}
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	open := func(bucket string) *blob.S3 {
		s, err := blob.NewS3(t.Context(), bucket, blob.S3Options{Region: "us-east-1", Endpoint: srv.URL, PathStyle: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	home, far := open("home"), open("far")
	ctx := context.Background()
	body := bytes.Repeat([]byte("replicate "), 50_000)
	info, err := home.Put(ctx, "artists/1/albums/2/songs/3/v1/ogg_128.ogg", bytes.NewReader(body), blob.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	before := uploads.Load()
	n, err := CopyObject(ctx, home, far, info)
	if err != nil || n != int64(len(body)) {
		t.Fatalf("CopyObject = %d, %v", n, err)
	}
	if copies.Load() != 1 || uploads.Load() != before {
		t.Errorf("server-side copies %d, uploads %d; want 1 and 0", copies.Load(), uploads.Load()-before)
	}
}
