package s3server

import (
	"context"
	"io"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// TestServer: the server starts empty on loopback, keeps what it stored
// across Restart on the same address, and Stop is idempotent.
func TestServer(t *testing.T) {
	srv := Start(t)
	if !strings.HasPrefix(srv.Endpoint, "http://127.0.0.1:") || srv.Endpoint != "http://"+srv.Addr() {
		t.Errorf("Endpoint = %q, Addr = %q; want a 127.0.0.1 URL of Addr", srv.Endpoint, srv.Addr())
	}
	ctx := context.Background()
	c := srv.Client()
	if out, err := c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil || len(out.Buckets) != 0 {
		t.Fatalf("ListBuckets of a new server = %v, %v; want none", out, err)
	}
	srv.CreateBucket(t, "bkt")
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: strings.NewReader("kept")}); err != nil {
		t.Fatal(err)
	}
	// A missing bucket is an error, not made on the fly.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("nope"), Key: aws.String("k"), Body: strings.NewReader("x")}); err == nil || !strings.Contains(err.Error(), "NoSuchBucket") {
		t.Errorf("PutObject into a missing bucket = %v, want NoSuchBucket", err)
	}
	addr := srv.Addr()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if srv.Addr() != addr {
		t.Errorf("Restart moved the server from %s to %s", addr, srv.Addr())
	}
	out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k")})
	if err != nil {
		t.Fatalf("GetObject after Restart: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "kept" {
		t.Errorf("after Restart the object holds %q, want %q", got, "kept")
	}
	srv.Stop()
	srv.Stop()
	if _, err := srv.Client().ListBuckets(ctx, &s3.ListBucketsInput{}); err == nil {
		t.Error("the server answers after Stop")
	}
}

func TestStoreURL(t *testing.T) {
	srv := &Server{Endpoint: "http://127.0.0.1:7070"}
	u, err := url.Parse(srv.StoreURL("media"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "s3" || u.Host != "media" || q.Get("endpoint") != srv.Endpoint || q.Get("path_style") != "true" || q.Get("region") != Region {
		t.Errorf("StoreURL = %s, want s3://media with the endpoint, path_style=true and region %s", u, Region)
	}
}

// TestBinaryMissing: without a built server (and CI unset) the test that
// needs one is skipped, not passed.
func TestBinaryMissing(t *testing.T) {
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "none"))
	t.Setenv("CI", "")
	skipped := false
	t.Run("needs the server", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Binary(t)
	})
	if !skipped {
		t.Error("Binary with no server did not skip")
	}
}
