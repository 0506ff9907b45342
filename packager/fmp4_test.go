package packager

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/Eyevinn/mp4ff/mp4"
	"github.com/grafov/m3u8"

	"riff/internal/testrun"
)

func TestFragmentPlan(t *testing.T) {
	cases := []struct {
		name                    string
		frames, priming, target int
		want                    []int
	}{
		{"empty", 0, 1, 258, nil},
		{"shorter than a target", 45, 1, 258, []int{0}},
		// 6 s at 44.1 kHz: 260 frames; a 1-frame tail is merged.
		{"one target plus priming and padding", 260, 1, 258, []int{0}},
		{"tail of exactly half is kept", 1 + 258 + 129, 1, 258, []int{0, 259}},
		{"tail under half is merged", 1 + 258 + 128, 1, 258, []int{0}},
		{"31 s at 44.1 kHz", 1337, 1, 258, []int{0, 259, 517, 775, 1033}},
		{"exact multiple", 1 + 3*258, 1, 258, []int{0, 259, 517}},
		{"no priming", 600, 0, 200, []int{0, 200, 400}},
		{"target of zero means one frame", 3, 0, 0, []int{0, 1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fragmentPlan(tc.frames, tc.priming, tc.target)
			if !slices.Equal(got, tc.want) {
				t.Errorf("fragmentPlan(%d, %d, %d) = %v, want %v", tc.frames, tc.priming, tc.target, got, tc.want)
			}
		})
	}
}

// TestTimingNoDrift: EXTINF are printed with three decimals; the sum must
// still match the exact duration for a long song with identical segments.
func TestTimingNoDrift(t *testing.T) {
	const rate, target = 44100, 258
	lay := &layout{SampleRate: rate, Priming: 1024}
	var start uint64
	for i := 0; i < 300; i++ {
		dur := uint64(target * aacFrameSamples)
		if i == 0 {
			dur += 1024
		}
		lay.Fragments = append(lay.Fragments, fragment{Size: 100000, Start: start, Duration: dur})
		start += dur
	}
	lay.Presented = start - lay.Priming
	st := timing(lay)
	exact := float64(lay.Presented) / rate
	var sum float64
	for i, e := range st.extinf {
		// What the playlist will say.
		printed := math.Round(float64(float32(e))*1000) / 1000
		sum += printed
		if truth := float64(target*aacFrameSamples) / rate; math.Abs(printed-truth) > 0.001 {
			t.Fatalf("extinf[%d] = %v, true %v", i, printed, truth)
		}
	}
	if math.Abs(sum-exact) > 0.0005+1e-9 {
		t.Errorf("sum of EXTINF %.6f, exact %.6f", sum, exact)
	}
	// A naive per-segment rounding would drift by 300 × 0.25 ms.
	naive := 300 * math.Round(float64(target*aacFrameSamples)/rate*1000) / 1000
	if math.Abs(naive-exact) < 0.05 {
		t.Fatalf("test does not exercise drift: naive sum %v exact %v", naive, exact)
	}
	if st.peakBitrate < st.avgBitrate || st.avgBitrate <= 0 {
		t.Errorf("peak %d avg %d", st.peakBitrate, st.avgBitrate)
	}
}

// TestPackageGolden packages three synthetic AAC renditions (deterministic,
// no ffmpeg needed) and compares the playlists, the MPD and a box dump of
// one rendition with testdata/*.golden (go test -update rewrites them).
func TestPackageGolden(t *testing.T) {
	dir := t.TempDir()
	const rate, channels = 44100, 2
	const presented, priming = 20 * rate, 1024
	var jobs []*job
	for _, kbps := range []int{64, 128, 320} {
		name := "aac_" + strconv.Itoa(kbps)
		path := filepath.Join(dir, "enc-"+name+".mp4")
		writeSyntheticAAC(t, path, rate, channels, presented, priming, kbps)
		jobs = append(jobs, &job{name: name, format: FormatAAC, kbps: kbps, sampleRate: rate, channels: channels, out: path})
	}
	p := New(Config{})
	res := &Result{Prefix: "artists/1/albums/2/songs/3/v4/", Probe: &Probe{Duration: 20 * time.Second}}
	files, err := p.packageJobs(jobs, dir, res)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, f.name)
		if f.data != nil {
			testrun.Golden(t, f.name+".golden", f.data)
		}
	}
	want := []string{"aac_64.mp4", "aac_128.mp4", "aac_320.mp4", "aac_64.m3u8", "aac_128.m3u8", "aac_320.m3u8", "manifest.mpd", "master.m3u8"}
	if !slices.Equal(names, want) {
		t.Errorf("write order %v, want %v", names, want)
	}
	data, err := os.ReadFile(filepath.Join(dir, "aac_128.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := mp4.DecodeFile(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var dump bytes.Buffer
	if err := f.Info(&dump, "", "", "  "); err != nil {
		t.Fatal(err)
	}
	testrun.Golden(t, "aac_128.mp4.boxes.golden", dump.Bytes())

	// Beyond the bytes: the structure is right, and the MPD parses back.
	inspectCMAF(t, data)
	for _, f := range files {
		switch {
		case f.name == "manifest.mpd":
			m, err := mpd.MPDFromBytes(f.data)
			if err != nil {
				t.Fatalf("MPD does not parse back: %v", err)
			}
			reps := m.Periods[0].AdaptationSets[0].Representations
			if len(reps) != 3 || reps[0].SegmentBase == nil || reps[0].SegmentBase.IndexRange == "" {
				t.Errorf("MPD representations: %+v", reps)
			}
		case strings.HasSuffix(f.name, ".m3u8"):
			if _, _, err := m3u8.DecodeFrom(bytes.NewReader(f.data), true); err != nil {
				t.Errorf("%s does not parse back: %v", f.name, err)
			}
			if bytes.Contains(f.data, []byte("PROGRAM-ID")) {
				t.Errorf("%s has PROGRAM-ID, removed in protocol version 6", f.name)
			}
		}
	}
	if res.Duration != 20*time.Second {
		t.Errorf("duration %v", res.Duration)
	}
}

// TestReadAACTrackRejects: the reader refuses intermediate files it does
// not understand instead of producing a broken CMAF file.
func TestReadAACTrackRejects(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.mp4")
	writeSyntheticAAC(t, good, 48000, 1, 48000, 1024, 64)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := readAACTrack(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("good file: %v", err)
	}
	if tr.sampleRate != 48000 || tr.channels != 1 || tr.priming != 1024 || tr.presented() != 48000 || len(tr.frames) != 48 {
		t.Errorf("track = rate %d ch %d priming %d presented %d frames %d", tr.sampleRate, tr.channels, tr.priming, tr.presented(), len(tr.frames))
	}
	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)/3],
		"empty":     nil,
		"text":      []byte("not an mp4 file at all, just words"),
	} {
		if _, err := readAACTrack(bytes.NewReader(bad)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
