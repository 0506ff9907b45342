package packager

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/grafov/m3u8"

	"riff/internal/blob"
	"riff/internal/testrun"
)

// TestPackageEndToEnd packages generated clips and checks the produced
// files the way players will meet them: ffprobe on every object, box
// structure, alignment across renditions, playlist arithmetic, and ffmpeg
// as an HLS, DASH and progressive client over HTTP with Range.
func TestPackageEndToEnd(t *testing.T) {
	testrun.RequireFFmpeg(t)
	cases := []struct {
		name      string
		file      string
		rate, ch  int
		seconds   float64
		codecArgs []string
		wantRate  int
		wantFrags int
	}{
		// 31 s: five fragments, the 1 s tail merged into the last.
		{"flac_44k1_stereo_31s", "in.flac", 44100, 2, 31, []string{"-c:a", "flac"}, 44100, 5},
		// Exactly one target: one fragment (the tail of priming is merged).
		{"aiff_48k_mono_6s", "in.aiff", 48000, 1, 6, []string{"-c:a", "pcm_s16be"}, 48000, 1},
		{"wav_44k1_stereo_1s", "in.wav", 44100, 2, 1, []string{"-c:a", "pcm_s16le"}, 44100, 1},
		// A 32 kHz source goes to the 48 kHz ladder.
		{"m4a_alac_32k_stereo_13s", "in.m4a", 32000, 2, 13, []string{"-c:a", "alac"}, 48000, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in := genAudio(t, dir, tc.file, tc.rate, tc.ch, tc.seconds, tc.codecArgs...)
			store, root := newFS(t)
			const prefix = "artists/7/albums/3/songs/42/v1/"
			p := New(Config{TempDir: t.TempDir()})
			var stages []string
			res, err := p.Package(context.Background(), in, store, prefix, func(pg Progress) {
				if len(stages) == 0 || stages[len(stages)-1] != pg.Stage {
					stages = append(stages, pg.Stage)
				}
			})
			if err != nil {
				t.Fatalf("Package: %v", err)
			}
			if want := []string{StageProbe, StageTranscode, StagePackage, StagePublish, StageDone}; !slices.Equal(stages, want) {
				t.Errorf("stages = %v, want %v", stages, want)
			}

			// Keys and write order: media first, master.m3u8 last.
			var keys []string
			for _, o := range res.Objects {
				keys = append(keys, o.Key)
			}
			want := []string{
				"aac_64.mp4", "aac_128.mp4", "aac_320.mp4", "ogg_64.ogg", "ogg_128.ogg", "ogg_320.ogg",
				"aac_64.m3u8", "aac_128.m3u8", "aac_320.m3u8", "manifest.mpd", "master.m3u8",
			}
			for i := range want {
				want[i] = prefix + want[i]
			}
			if !slices.Equal(keys, want) {
				t.Errorf("objects written = %v\nwant %v", keys, want)
			}
			stored := listKeys(t, store)
			slices.Sort(keys)
			if !slices.Equal(stored, keys) {
				t.Errorf("store holds %v, result lists %v", stored, keys)
			}
			if res.SampleRate != tc.wantRate || res.Channels != tc.ch {
				t.Errorf("result %d Hz %d ch, want %d Hz %d ch", res.SampleRate, res.Channels, tc.wantRate, tc.ch)
			}
			srcDur := time.Duration(tc.seconds * float64(time.Second))
			if d := res.Duration - srcDur; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("result duration %v, source %v", res.Duration, srcDur)
			}
			dir = filepath.Join(root, filepath.FromSlash(prefix))
			frame := float64(aacFrameSamples) / float64(tc.wantRate)

			// Every rendition: ffprobe reads it, with the ladder's rate and
			// the source's channel count.
			for _, r := range res.Renditions {
				pj := probeJSON(t, filepath.Join(dir, filepath.Base(r.Key)))
				if len(pj.Streams) != 1 || pj.Streams[0].CodecType != "audio" {
					t.Fatalf("%s: streams %+v", r.Name, pj.Streams)
				}
				s := pj.Streams[0]
				wantCodec := map[string]string{FormatAAC: "aac", FormatOgg: "vorbis"}[r.Format]
				if s.CodecName != wantCodec || atoi(t, s.SampleRate) != tc.wantRate || s.Channels != tc.ch {
					t.Errorf("%s: ffprobe says %s %s Hz %d ch, want %s %d Hz %d ch", r.Name, s.CodecName, s.SampleRate, s.Channels, wantCodec, tc.wantRate, tc.ch)
				}
				if r.Size <= 0 || r.AvgBitrate <= 0 {
					t.Errorf("%s: size %d avg bitrate %d", r.Name, r.Size, r.AvgBitrate)
				}
			}

			// CMAF structure and alignment across the ladder.
			var ref []fragInfo
			for _, r := range res.Renditions {
				if r.Format != FormatAAC {
					continue
				}
				data, err := os.ReadFile(filepath.Join(dir, r.Name+".mp4"))
				if err != nil {
					t.Fatal(err)
				}
				init, _, frags := inspectCMAF(t, data)
				if got := init.Moov.Trak.Mdia.Mdhd.Timescale; int(got) != tc.wantRate {
					t.Errorf("%s timescale %d", r.Name, got)
				}
				if len(frags) != tc.wantFrags || r.Segments != tc.wantFrags {
					t.Errorf("%s: %d fragments (result says %d), want %d", r.Name, len(frags), r.Segments, tc.wantFrags)
				}
				if ref == nil {
					ref = frags
				}
				for i := range frags {
					if i >= len(ref) || frags[i].tfdt != ref[i].tfdt || frags[i].dur != ref[i].dur || frags[i].samples != ref[i].samples {
						t.Errorf("%s fragment %d (tfdt %d, %d samples) not aligned with aac_64", r.Name, i, frags[i].tfdt, frags[i].samples)
					}
				}
				// No tiny last fragment.
				target := math.Round(6 * float64(tc.wantRate) / aacFrameSamples)
				if n := len(frags); n > 1 && float64(frags[n-1].samples) < target/2 {
					t.Errorf("%s: last fragment has %d frames, less than half of %v", r.Name, frags[n-1].samples, target)
				}

				// The media playlist describes exactly those bytes, and its
				// EXTINF add up to the source duration.
				pl := decodeMedia(t, filepath.Join(dir, r.Name+".m3u8"))
				if pl.Map == nil || pl.Map.URI != r.Name+".mp4" || pl.Map.Offset != 0 || pl.Map.Limit != int64(init.Size()) {
					t.Errorf("%s EXT-X-MAP %+v, want %s.mp4 %d@0", r.Name, pl.Map, r.Name, init.Size())
				}
				var sum float64
				segs := pl.GetAllSegments()
				if len(segs) != len(frags) {
					t.Fatalf("%s: %d segments for %d fragments", r.Name, len(segs), len(frags))
				}
				for i, s := range segs {
					sum += s.Duration
					if s.URI != r.Name+".mp4" || s.Offset != frags[i].offset || s.Limit != frags[i].size {
						t.Errorf("%s segment %d: %s %d@%d, fragment is %d@%d", r.Name, i, s.URI, s.Limit, s.Offset, frags[i].size, frags[i].offset)
					}
					if math.Ceil(s.Duration) > pl.TargetDuration+0.5 {
						t.Errorf("%s segment %d EXTINF %v above target %v", r.Name, i, s.Duration, pl.TargetDuration)
					}
				}
				if math.Abs(sum-tc.seconds) > frame {
					t.Errorf("%s: sum of EXTINF %.4f, source %.4f (more than one AAC frame apart)", r.Name, sum, tc.seconds)
				}
				if pl.MediaType != m3u8.VOD || !pl.Closed || pl.Version() != hlsVersion {
					t.Errorf("%s: type %v closed %v version %d", r.Name, pl.MediaType, pl.Closed, pl.Version())
				}
			}

			// ffmpeg as a client, through an HTTP server with Range, under
			// a token path (relative URIs must carry it).
			base := serveDir(t, root) + prefix
			srcSamples := int64(math.Round(tc.seconds * float64(tc.wantRate)))
			tol := int64(0.050 * float64(tc.wantRate))
			for _, target := range []string{"master.m3u8", "manifest.mpd", "ogg_64.ogg", "ogg_128.ogg", "ogg_320.ogg"} {
				got := decodeSamples(t, base+target, tc.ch)
				t.Logf("%s: decoded %d samples, source %d (%+.1f ms)", target, got, srcSamples, 1000*float64(got-srcSamples)/float64(tc.wantRate))
				if d := got - srcSamples; d < -tol || d > tol {
					t.Errorf("%s decodes to %d samples (%.4f s), source has %d (%.4f s)", target, got, float64(got)/float64(tc.wantRate), srcSamples, tc.seconds)
				}
			}
		})
	}
}

func decodeMedia(t *testing.T, path string) *m3u8.MediaPlaylist {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pl, lt, err := m3u8.DecodeFrom(bytes.NewReader(data), true)
	if err != nil || lt != m3u8.MEDIA {
		t.Fatalf("decode %s: %v (type %v)", path, err, lt)
	}
	return pl.(*m3u8.MediaPlaylist)
}

// TestPackageCleansUpOnPublishFailure fails one Put late in the publish and
// checks that nothing is left in the store.
func TestPackageCleansUpOnPublishFailure(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	in := genAudio(t, dir, "in.flac", 44100, 2, 2, "-c:a", "flac")
	for _, failAt := range []int{1, 5, 11} {
		fs, _ := newFS(t)
		store := &failingStore{Store: fs, failAt: failAt}
		tmp := t.TempDir()
		p := New(Config{Ladder: []int{64, 128, 320}, TempDir: tmp})
		_, err := p.Package(context.Background(), in, store, "songs/1/v1/", nil)
		if err == nil || !errors.Is(err, errInjected) {
			t.Fatalf("failAt %d: err = %v, want the injected failure", failAt, err)
		}
		if keys := listKeys(t, fs); len(keys) != 0 {
			t.Errorf("failAt %d: store still holds %v (wrote %v)", failAt, keys, store.keys)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("failAt %d: temp dir not cleaned: %v", failAt, ents)
		}
	}
}

// TestPackageCancel cancels during the transcode: nothing is written, the
// temp dir is removed, and the error is the cancellation.
func TestPackageCancel(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	in := genAudio(t, dir, "in.wav", 48000, 2, 20, "-c:a", "pcm_s16le")
	fs, _ := newFS(t)
	tmp := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := New(Config{TempDir: tmp})
	start := time.Now()
	_, err := p.Package(ctx, in, fs, "", func(pg Progress) {
		if pg.Stage == StageTranscode {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("cancel took %v", el)
	}
	if keys := listKeys(t, fs); len(keys) != 0 {
		t.Errorf("store holds %v", keys)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("temp dir not cleaned: %v", ents)
	}
}

// TestPackageRefusesUsedPrefix: a published version is immutable.
func TestPackageRefusesUsedPrefix(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	in := genAudio(t, dir, "in.flac", 44100, 1, 1, "-c:a", "flac")
	fs, _ := newFS(t)
	if _, err := fs.Put(context.Background(), "songs/1/v1/master.m3u8", bytes.NewReader([]byte("#EXTM3U\n")), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{}).Package(context.Background(), in, fs, "songs/1/v1/", nil)
	if !errors.Is(err, ErrPrefixInUse) {
		t.Fatalf("err = %v, want ErrPrefixInUse", err)
	}
	if keys := listKeys(t, fs); !slices.Equal(keys, []string{"songs/1/v1/master.m3u8"}) {
		t.Errorf("store holds %v", keys)
	}
}
