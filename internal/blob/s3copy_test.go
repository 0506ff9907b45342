package blob

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// TestS3CopyFrom: between two buckets of one S3 service an object is
// copied server-side (one CopyObject, no bytes through the client);
// from another kind of store CopyFrom declines.
func TestS3CopyFrom(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	mem := s3mem.New()
	for _, b := range []string{"riff-eu", "riff-na"} {
		if err := mem.CreateBucket(b); err != nil {
			t.Fatal(err)
		}
	}
	fake := gofakes3.New(mem).Server()
	var copies, puts atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				copies.Add(1)
			} else {
				puts.Add(1)
			}
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
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
	putsBefore := puts.Load()
	info, ok, err := na.CopyFrom(ctx, eu, key)
	if err != nil || !ok || info.Size != int64(len(body)) {
		t.Fatalf("CopyFrom = %+v, %v, %v", info, ok, err)
	}
	if copies.Load() != 1 || puts.Load() != putsBefore {
		t.Errorf("copies %d, plain puts %d: want one server-side copy and no upload", copies.Load(), puts.Load()-putsBefore)
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
