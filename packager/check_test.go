package packager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"riff/internal/testrun"
)

// TestDecodeCheck: a whole file decodes; a truncated one (which probes
// fine) is ErrUndecodable.
func TestDecodeCheck(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	flac := genAudio(t, dir, "six.flac", 44100, 2, 6, "-c:a", "flac")
	whole, err := os.ReadFile(flac)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.flac")
	if err := os.WriteFile(cut, whole[:len(whole)*6/10], 0o644); err != nil {
		t.Fatal(err)
	}
	p := New(Config{})
	ctx := context.Background()
	for _, tc := range []struct {
		path string
		want error
	}{{flac, nil}, {cut, ErrUndecodable}} {
		pr, err := p.Probe(ctx, tc.path)
		if err != nil {
			t.Fatalf("Probe(%s) = %v", tc.path, err)
		}
		d, err := p.DecodeCheck(ctx, tc.path, pr)
		if tc.want == nil && (d < 5990*time.Millisecond || d > 6010*time.Millisecond) {
			t.Errorf("DecodeCheck(%s) measured %v, want 6s", filepath.Base(tc.path), d)
		}
		var pe *ProbeError
		if tc.want == nil && err != nil || tc.want != nil && (!errors.Is(err, tc.want) || !errors.As(err, &pe)) {
			t.Errorf("DecodeCheck(%s) = %v, want %v", filepath.Base(tc.path), err, tc.want)
		}
	}
}

// TestRemuxADTS: raw AAC is rewrapped into an MP4 the probe accepts; a
// stream that is not AAC is ErrUndecodable and leaves no output.
func TestRemuxADTS(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	adts := genAudio(t, dir, "raw.aac", 44100, 2, 2, "-c:a", "aac", "-f", "adts")
	p := New(Config{})
	ctx := context.Background()
	out := filepath.Join(dir, "out.m4a")
	if err := p.RemuxADTS(ctx, adts, out); err != nil {
		t.Fatal(err)
	}
	pr, err := p.Probe(ctx, out)
	if err != nil || pr.Container != "mp4" || pr.Codec != "aac" {
		t.Fatalf("probe of the remuxed file = %+v, %v", pr, err)
	}
	junk := filepath.Join(dir, "junk.aac")
	if err := os.WriteFile(junk, []byte("not an AAC stream at all, just text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.m4a")
	if err := p.RemuxADTS(ctx, junk, bad); !errors.Is(err, ErrUndecodable) {
		t.Errorf("RemuxADTS(junk) = %v, want ErrUndecodable", err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed remux left %s (%v)", bad, err)
	}
}

// TestPackageProbed: a probe handed in is used as is (no ffprobe runs: the
// configured one would fail), and one naming a demuxer we do not accept is
// refused before ffmpeg sees it.
func TestPackageProbed(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	flac := genAudio(t, dir, "two.flac", 44100, 2, 2, "-c:a", "flac")
	ctx := context.Background()
	pr, err := New(Config{}).Probe(ctx, flac)
	if err != nil {
		t.Fatal(err)
	}
	p := New(Config{FFprobe: "false", Ladder: []int{64}, Formats: []string{FormatAAC}, TempDir: t.TempDir()})
	store, _ := newFS(t)
	res, err := p.PackageProbed(ctx, flac, pr, store, "a/v1/", nil)
	if err != nil {
		t.Fatalf("PackageProbed with a probe = %v", err)
	}
	if len(res.Renditions) != 1 || res.Probe != pr {
		t.Errorf("result %+v", res)
	}
	if _, err := p.Package(ctx, flac, store, "b/v1/", nil); err == nil {
		t.Error("Package with a failing ffprobe succeeded: it did not probe")
	}
	for _, bad := range []Probe{
		{Container: "mp4", Demuxer: "concat", Codec: "aac", SampleRate: 44100, Channels: 2, Duration: 1e9},
		{Container: "flac", Demuxer: "flac", Codec: "mp3", SampleRate: 44100, Channels: 2, Duration: 1e9},
		{Container: "flac", Demuxer: "flac", Codec: "flac", SampleRate: 44100, Channels: 2},
		{Container: "flac", Demuxer: "flac", Codec: "flac", SampleRate: 1, Channels: 2, Duration: 1e9},
	} {
		_, err := p.PackageProbed(ctx, flac, &bad, store, "c/v1/", nil)
		var pe *ProbeError
		if !errors.As(err, &pe) {
			t.Errorf("PackageProbed(%+v) = %v, want a *ProbeError", bad, err)
		}
	}
	if ks := listKeys(t, store); len(ks) != 4 { // a/v1: the rendition, its playlist, the MPD, the master
		t.Errorf("store holds %v", ks)
	}
}

// TestDecodeCheckMeasures: the duration comes from the decoded samples,
// not the header: a FLAC claiming 2 s that holds 6 s measures 6 s; one
// holding an hour of 8 kHz silence with the same lie is refused
// (ErrDuration) once the limit is decoded, quickly; a decode over
// CheckTimeout is ErrTooSlow.
func TestDecodeCheckMeasures(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	six := genAudio(t, dir, "six.flac", 44100, 2, 6, "-c:a", "flac")
	testrun.SetFLACSamples(t, six, 2*44100)
	hour := filepath.Join(dir, "hour.flac")
	ffmpegRun(t, "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "3600", "-c:a", "flac", "file:"+hour)
	testrun.SetFLACSamples(t, hour, 2*8000)
	ctx := context.Background()
	p := New(Config{MaxDuration: 10 * time.Second})
	for _, path := range []string{six, hour} {
		pr, err := p.Probe(ctx, path)
		if err != nil || pr.Duration != 2*time.Second {
			t.Fatalf("Probe(%s) = %+v, %v; want the header's lie, 2s", filepath.Base(path), pr, err)
		}
	}
	pr, _ := p.Probe(ctx, six)
	if d, err := p.DecodeCheck(ctx, six, pr); err != nil || d < 5990*time.Millisecond || d > 6010*time.Millisecond {
		t.Errorf("DecodeCheck(six.flac claiming 2s) = %v, %v; want 6s", d, err)
	}
	pr, _ = p.Probe(ctx, hour)
	start := time.Now()
	_, err := p.DecodeCheck(ctx, hour, pr)
	if !errors.Is(err, ErrDuration) || !strings.Contains(err.Error(), "10s") {
		t.Errorf("DecodeCheck(an hour claiming 2s) = %v, want ErrDuration naming the 10s limit", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("refusing an hour-long file took %v: the decode did not stop at the limit", el)
	}
	slow := New(Config{CheckTimeout: time.Millisecond})
	if _, err := slow.DecodeCheck(ctx, six, pr); !errors.Is(err, ErrTooSlow) {
		t.Errorf("DecodeCheck over CheckTimeout = %v, want ErrTooSlow", err)
	}
}
