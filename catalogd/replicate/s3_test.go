package replicate

import (
	"bytes"
	"context"
	"testing"

	"riff/internal/blob"
	"riff/internal/blob/blobtest"
)

// TestCopyObjectS3ServerSide: between buckets of one S3 service the copy
// is server-side (no upload of the bytes) and still verified.
func TestCopyObjectS3ServerSide(t *testing.T) {
	srv := blobtest.NewS3(t, "home", "far")
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
	before := srv.Uploads.Load()
	n, err := CopyObject(ctx, home, far, info)
	if err != nil || n != int64(len(body)) {
		t.Fatalf("CopyObject = %d, %v", n, err)
	}
	if srv.Copies.Load() != 1 || srv.Uploads.Load() != before {
		t.Errorf("server-side copies %d, uploads %d; want 1 and 0", srv.Copies.Load(), srv.Uploads.Load()-before)
	}
}
