package blob

import (
	"bytes"
	"context"
	"io"
	"testing"

	"riff/internal/blob/blobtest"
)

// TestS3CopyFrom: between two buckets of one S3 service an object is
// copied server-side (one CopyObject, no bytes through the client);
// from another kind of store CopyFrom declines.
func TestS3CopyFrom(t *testing.T) {
	srv := blobtest.NewS3(t, "riff-eu", "riff-na")
	open := func(bucket, endpoint string) *S3 {
		s, err := NewS3(t.Context(), bucket, S3Options{Region: "us-east-1", Endpoint: endpoint, PathStyle: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	eu, na := open("riff-eu", srv.URL), open("riff-na", srv.URL)
	ctx := context.Background()
	key := "artists/1/albums/2/songs/3/v1/aac 64.mp4" // a space: the copy source is URL-encoded
	body := bytes.Repeat([]byte("riff region "), 100_000)
	if _, err := eu.Put(ctx, key, bytes.NewReader(body), PutOptions{}); err != nil {
		t.Fatal(err)
	}
	putsBefore := srv.Uploads.Load()
	info, ok, err := na.CopyFrom(ctx, eu, key)
	if err != nil || !ok || info.Size != int64(len(body)) {
		t.Fatalf("CopyFrom = %+v, %v, %v", info, ok, err)
	}
	if srv.Copies.Load() != 1 || srv.Uploads.Load() != putsBefore {
		t.Errorf("copies %d, plain puts %d: want one server-side copy and no upload", srv.Copies.Load(), srv.Uploads.Load()-putsBefore)
	}
	rc, _, err := na.Get(ctx, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, body) {
		t.Errorf("copied object differs (%d bytes, want %d)", len(got), len(body))
	}
	if _, _, err := na.CopyFrom(ctx, eu, "artists/1/albums/2/songs/3/v1/missing.mp4"); err == nil {
		t.Error("CopyFrom of a missing object succeeded")
	}
	// Another service (another endpoint) or another kind of store: declined.
	other := open("riff-na", "http://127.0.0.1:1")
	if _, ok, err := other.CopyFrom(ctx, eu, key); ok || err != nil {
		t.Errorf("CopyFrom across services = %v, %v; want declined", ok, err)
	}
	fs, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if _, ok, err := na.CopyFrom(ctx, fs, key); ok || err != nil {
		t.Errorf("CopyFrom a folder store = %v, %v; want declined", ok, err)
	}
}
