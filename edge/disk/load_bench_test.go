package disk

import (
	"fmt"
	"hash/crc32"
	"os"
	"testing"
	"time"
)

// BenchmarkLoad100k times the index rebuild at start over 100,000 slice
// files: Open and Load (names and sizes: what a start waits for), and
// until the background scrub has read every header. The page cache is
// warm (the files were just written).
//
// It writes 100,000 files first (minutes on a busy machine), so it runs
// only when RIFF_DISK_LOAD_BENCH is set:
//
//	RIFF_DISK_LOAD_BENCH=1 go test -run XXX -bench Load100k -benchtime 3x ./edge/disk
func BenchmarkLoad100k(b *testing.B) {
	if os.Getenv("RIFF_DISK_LOAD_BENCH") == "" {
		b.Skip("set RIFF_DISK_LOAD_BENCH=1 to write 100,000 files and time their load")
	}
	const n = 100_000
	dir := b.TempDir()
	s, err := Open(Config{Dir: dir, MaxBytes: 1 << 40, SliceBytes: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	hdr := make([]byte, HeaderBytes)
	data := make([]byte, 512)
	for i := range n {
		key := fmt.Sprintf("artists/%d/albums/%d/songs/%d/v1/aac_128.mp4", i/1000, i/100, i/10)
		h := header{key: key, gen: 0, idx: int64(i % 10), meta: Meta{Size: 10 << 20, ETag: `"e"`, ContentType: "audio/mp4"},
			dataLen: uint32(len(data)), dataCRC: crc32.Checksum(data, castagnoli), sliceBytes: 1 << 20}
		encodeHeader(hdr, &h)
		f, err := os.Create(s.path(SliceID(key, 0, h.idx)))
		if err != nil {
			b.Fatal(err)
		}
		f.Write(hdr)
		f.Write(data)
		f.Close()
	}
	s.Close()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		s, err := Open(Config{Dir: dir, MaxBytes: 1 << 40, SliceBytes: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		ls, err := s.Load(func(string) uint64 { return 0 })
		if err != nil || ls.Files != n {
			b.Fatalf("Load = %+v, %v", ls, err)
		}
		b.ReportMetric(float64(ls.Took.Milliseconds()), "ms/load")
		s.WaitScrub()
		b.ReportMetric(float64(s.now().Sub(start).Milliseconds()), "ms/scrubbed")
		s.Close()
	}
}
