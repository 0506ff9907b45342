package dev

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"riff/internal/s3server"
	"riff/internal/testrun"
)

// bucketKeys lists the keys under prefix in bucket, straight from the
// server.
func bucketKeys(t *testing.T, srv *s3server.Server, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(srv.Client(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("ListObjectsV2 %s/%s: %v", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}

// TestEndToEndS3 runs the whole system on a real S3 server: riff dev with
// -blob s3://… (catalogd and origin on one bucket). An artist uploads; the
// packaged song lands in the bucket; a listener plays HLS, DASH and Ogg
// through the edge, which fetches from the origin, which reads the bucket;
// the origin's byte ranges are the bucket's bytes; a takedown deletes the
// song's objects from the bucket (the original is kept, as documented).
func TestEndToEndS3(t *testing.T) {
	testrun.RequireFFmpeg(t)
	srv := s3server.Start(t)
	srv.SetEnv(t)
	const bucket = "riff-media"
	srv.CreateBucket(t, bucket)
	const ttl = 8 * time.Second
	out, stop := runDev(t, "-data", t.TempDir(), "-demo=false", "-blob", srv.StoreURL(bucket),
		"-catalogd-listen", "127.0.0.1:0", "-origin-listen", "127.0.0.1:0", "-edge-listen", "127.0.0.1:0",
		"-edge-admin-listen", "127.0.0.1:0", "-token-ttl", ttl.String(), "-gc-delay", "1ms", "-ready-timeout", "60s")
	addr := func(name string) string {
		m := regexp.MustCompile(name + `\s+(http://127\.0\.0\.1:[1-9]\d*)`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no %s address in the banner:\n%s", name, out)
		}
		return m[1]
	}
	base, originURL, edgeURL := addr("catalogd"), addr("origin"), addr("edge")

	artist := signup(t, base, "artist@example.com")
	var a, al struct{ ID int64 }
	artist.json("POST", "/artists", map[string]string{"name": "Pure Tones"}, http.StatusCreated, &a)
	artist.json("POST", "/albums", map[string]any{"artist_id": a.ID, "title": "On S3", "type": "single"}, http.StatusCreated, &al)
	var song songJSON
	artist.upload("POST", "/songs", synthFLAC(t, t.TempDir(), "a440.flac", 440, 4), map[string]string{"album_id": fmt.Sprint(al.ID), "title": "Bucket Tone"},
		http.StatusAccepted, &song)
	artist.waitSong(song.ID, func(s songJSON) bool { return s.Status == "ready" })

	listener := signup(t, base, "listener@example.com")
	v1 := listener.waitSong(song.ID, func(s songJSON) bool { return s.HLSURL != "" })
	for _, u := range []string{v1.HLSURL, v1.DASHURL, v1.StreamURL} {
		if !strings.HasPrefix(u, edgeURL+"/t/") {
			t.Fatalf("URL %q is not an edge URL", u)
		}
		d, f := decode(t, u)
		if diff := d - 4*time.Second; diff < -50*time.Millisecond || diff > 50*time.Millisecond {
			t.Errorf("%s: duration %s, want 4s ± 50ms", u, d)
		}
		if math.Abs(f-440) > 10 {
			t.Errorf("%s: pitch %.1f Hz, want 440", u, f)
		}
	}

	// What was published is in the bucket, and only there.
	songFolder := v1.HLSURL[strings.Index(v1.HLSURL, "/artists/")+1 : strings.Index(v1.HLSURL, "/v1/")+1]
	published := bucketKeys(t, srv, bucket, songFolder)
	for _, name := range []string{"v1/master.m3u8", "v1/manifest.mpd", "v1/aac_128.mp4", "v1/aac_128.m3u8", "v1/ogg_128.ogg"} {
		if !slices.Contains(published, songFolder+name) {
			t.Errorf("bucket lacks %s%s; it holds %q", songFolder, name, published)
		}
	}
	originals := bucketKeys(t, srv, bucket, fmt.Sprintf("originals/%d/", song.ID))
	if len(originals) != 1 {
		t.Errorf("bucket holds originals %q, want the one upload", originals)
	}

	// The origin serves the bucket's bytes, ranges included.
	key := songFolder + "v1/aac_128.mp4"
	obj, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Range: aws.String("bytes=100-1123")})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	req, _ := http.NewRequest("GET", originURL+"/"+key, nil)
	req.Header.Set("Range", "bytes=100-1123")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusPartialContent || len(want) != 1024 || string(got) != string(want) {
		t.Errorf("origin GET %s bytes=100-1123 = %d, %d bytes; want 206 and the bucket's 1024", key, res.StatusCode, len(got))
	}

	// Takedown: once the URLs out have expired, the objects are deleted
	// from the bucket and the edge answers 404.
	artist.json("DELETE", fmt.Sprintf("/songs/%d", song.ID), nil, http.StatusNoContent, nil)
	deadline := time.Now().Add(ttl + time.Minute)
	for {
		left := bucketKeys(t, srv, bucket, songFolder)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s after takedown: bucket still holds %q", songFolder, left)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := bucketKeys(t, srv, bucket, fmt.Sprintf("originals/%d/", song.ID)); !slices.Equal(got, originals) {
		t.Errorf("originals after takedown = %q, want %q kept", got, originals)
	}
	for {
		code, _ := fetch(t, originURL+"/"+key)
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("origin GET %s after takedown = %d, want 404", key, code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Errorf("riff dev: %v", err)
	}
}

// TestDevS3WrongCredentials: riff dev on a bucket it may not use refuses to
// start, and says why: the origin's /readyz names the blob check, and the
// log carries the server's reason.
func TestDevS3WrongCredentials(t *testing.T) {
	srv := s3server.Start(t)
	srv.CreateBucket(t, "riff-media")
	for _, tc := range []struct {
		name, bucket, secret, reason string
	}{
		{"wrong secret", "riff-media", "wrong", "SignatureDoesNotMatch"},
		{"missing bucket", "no-such-bucket", srv.SecretKey, "NoSuchBucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s3server.SetCredentials(t, srv.AccessKey, tc.secret)
			var out, errOut testrun.LockedBuffer
			err := Run(t.Context(), []string{"-data", t.TempDir(), "-demo=false", "-blob", srv.StoreURL(tc.bucket),
				"-catalogd-listen", "127.0.0.1:0", "-origin-listen", "127.0.0.1:0", "-edge-listen", "127.0.0.1:0",
				"-edge-admin-listen", "127.0.0.1:0", "-ready-timeout", "3s"}, func(string) string { return "" }, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), "origin not ready") || !strings.Contains(err.Error(), `"failed":["blob"]`) {
				t.Errorf("riff dev = %v, want origin not ready with the blob check failed", err)
			}
			if !strings.Contains(errOut.String(), tc.reason) {
				t.Errorf("riff dev's log does not mention %s:\n%s", tc.reason, errOut.String())
			}
		})
	}
}
