package replicate

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"riff/internal/blob"
)

// BenchmarkCopyObject copies a 27 MB object (one 3.5-minute song version's
// worth of renditions) between two folder stores, with the read-back
// verification: the per-region cost of replicating a version.
func BenchmarkCopyObject(b *testing.B) {
	ctx := context.Background()
	src, err := blob.NewFS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	body := make([]byte, 27<<20)
	rand.Read(body)
	info, err := src.Put(ctx, "artists/1/albums/2/songs/3/v1/ogg_320.ogg", bytes.NewReader(body), blob.PutOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		dst, err := blob.NewFS(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := CopyObject(ctx, src, dst, info); err != nil {
			b.Fatal(err)
		}
		dst.Close()
	}
}
