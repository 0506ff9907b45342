package packager

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"riff/internal/cover/covertest"
	"riff/internal/testrun"
)

func TestExtractCover(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	pic := covertest.JPEG(t, 320, 240)
	jpg := filepath.Join(dir, "front.jpg")
	if err := os.WriteFile(jpg, pic, 0o644); err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(dir, "front.png")
	if err := os.WriteFile(png, covertest.PNG(t, 100, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	withArt := func(name, picture string, codec ...string) string {
		out := filepath.Join(dir, name)
		args := []string{"-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-i", "file:" + picture,
			"-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic"}
		args = append(append(args, codec...), "file:"+out)
		ffmpegRun(t, args...)
		return out
	}
	p := New(Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		name, path string
		want       []byte // nil: only check it is a PNG
	}{
		{"mp3 with a JPEG (ID3 APIC)", withArt("art.mp3", jpg, "-c:a", "libmp3lame", "-id3v2_version", "3"), pic},
		{"flac with a JPEG (PICTURE)", withArt("art.flac", jpg, "-c:a", "flac"), pic},
		{"flac with a PNG", withArt("png.flac", png, "-c:a", "flac"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, err := p.Probe(ctx, tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if pr.Cover == nil {
				t.Fatal("probe found no cover")
			}
			got, err := p.ExtractCover(ctx, tc.path, pr, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != nil && !bytes.Equal(got, tc.want) {
				t.Errorf("extracted %d bytes, want the %d bytes embedded", len(got), len(tc.want))
			}
			if tc.want == nil && !bytes.HasPrefix(got, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("extracted %q…, want a PNG", got[:min(len(got), 8)])
			}
			if _, err := p.ExtractCover(ctx, tc.path, pr, 100); !errors.Is(err, ErrCoverTooLarge) {
				t.Errorf("ExtractCover(limit 100) = %v, want ErrCoverTooLarge", err)
			}
		})
	}
	plain := genAudio(t, dir, "plain.flac", 44100, 1, 1, "-c:a", "flac")
	pr, err := p.Probe(ctx, plain)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := p.ExtractCover(ctx, plain, pr, 1<<20); got != nil || err != nil {
		t.Errorf("ExtractCover(no art) = %d bytes, %v; want nil, nil", len(got), err)
	}
}
