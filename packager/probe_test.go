package packager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"riff/internal/testrun"
)

// ffprobe JSON as ffprobe 5.1 prints it, trimmed to what matters.
const (
	flacJSON = `{"streams":[{"index":0,"codec_name":"flac","codec_type":"audio","sample_rate":"44100","channels":2,"duration":"2.000000",
		"disposition":{"attached_pic":0}},{"index":1,"codec_name":"mjpeg","codec_type":"video","width":500,"height":500,"disposition":{"attached_pic":1}}],
		"format":{"format_name":"flac","duration":"2.000000","bit_rate":"130376",
		"tags":{"TITLE":"  Song\u0007 One ","ARTIST":"Art","album":"Alb","track":"3/12","GENRE":"Rock","date":"2021-05-01","ISRC":"us-rc1-76-07839"}}}`
	oggJSON = `{"streams":[{"index":0,"codec_name":"opus","codec_type":"audio","sample_rate":"48000","channels":1,
		"tags":{"TITLE":"Ogg Title","ARTIST":"Ogg Artist","TRACKNUMBER":"7","DATE":"1999"}}],
		"format":{"format_name":"ogg","duration":"10.5"}}`
	m4aJSON = `{"streams":[{"index":0,"codec_name":"alac","codec_type":"audio","sample_rate":"96000","channels":2,"duration":"61.0"}],
		"format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"61.000000","tags":{"title":"x","TSRC":"GBAYE0000351"}}}`
)

func TestParseProbe(t *testing.T) {
	cases := []struct {
		name     string
		json     string
		max      time.Duration
		wantKind error
		check    func(t *testing.T, p *Probe)
	}{
		{"flac with cover and tags", flacJSON, time.Hour, nil, func(t *testing.T, p *Probe) {
			want := Tags{Title: "Song  One", Artist: "Art", Album: "Alb", Genre: "Rock", Track: 3, Year: 2021, ISRC: "USRC17607839"}
			if p.Tags != want {
				t.Errorf("tags = %+v, want %+v", p.Tags, want)
			}
			if p.Cover == nil || p.Cover.Codec != "mjpeg" || p.Cover.Width != 500 || p.Cover.StreamIndex != 1 {
				t.Errorf("cover = %+v", p.Cover)
			}
			if p.Container != "flac" || p.Demuxer != "flac" || p.Codec != "flac" || p.SampleRate != 44100 || p.Channels != 2 ||
				p.Duration != 2*time.Second || p.Bitrate != 130376 || p.StreamIndex != 0 {
				t.Errorf("probe = %+v", p)
			}
		}},
		{"ogg opus stream tags", oggJSON, time.Hour, nil, func(t *testing.T, p *Probe) {
			want := Tags{Title: "Ogg Title", Artist: "Ogg Artist", Track: 7, Year: 1999}
			if p.Tags != want || p.Cover != nil || p.Duration != 10500*time.Millisecond {
				t.Errorf("probe = %+v, want tags %+v", p, want)
			}
		}},
		{"m4a alac demuxer mov", m4aJSON, time.Hour, nil, func(t *testing.T, p *Probe) {
			if p.Container != "mp4" || p.Demuxer != "mov" || p.Tags.ISRC != "GBAYE0000351" {
				t.Errorf("probe = %+v", p)
			}
		}},
		{"too long", m4aJSON, time.Minute, ErrDuration, nil},
		{"zero duration", `{"streams":[{"index":0,"codec_name":"mp3","codec_type":"audio","sample_rate":"44100","channels":2}],"format":{"format_name":"mp3","duration":"0.000000"}}`, time.Hour, ErrDuration, nil},
		{"NaN duration", `{"streams":[{"index":0,"codec_name":"mp3","codec_type":"audio","sample_rate":"44100","channels":2,"duration":"nan"}],"format":{"format_name":"mp3"}}`, time.Hour, ErrDuration, nil},
		{"no audio", `{"streams":[{"index":0,"codec_name":"h264","codec_type":"video","disposition":{"attached_pic":0}}],"format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"1.0"}}`, time.Hour, ErrNoAudio, nil},
		{"cover only", `{"streams":[{"index":0,"codec_name":"png","codec_type":"video","disposition":{"attached_pic":1}}],"format":{"format_name":"mp3","duration":"1.0"}}`, time.Hour, ErrNoAudio, nil},
		{"music video", `{"streams":[{"index":0,"codec_name":"h264","codec_type":"video","disposition":{}},{"index":1,"codec_name":"aac","codec_type":"audio","sample_rate":"48000","channels":2}],"format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"100"}}`, time.Hour, ErrUnsupportedFormat, nil},
		{"matroska", `{"streams":[{"index":0,"codec_name":"opus","codec_type":"audio","sample_rate":"48000","channels":2}],"format":{"format_name":"matroska,webm","duration":"3"}}`, time.Hour, ErrUnsupportedFormat, nil},
		{"ac3 in mp4", `{"streams":[{"index":0,"codec_name":"ac3","codec_type":"audio","sample_rate":"48000","channels":6}],"format":{"format_name":"mov,mp4,m4a,3gp,3g2,mj2","duration":"3"}}`, time.Hour, ErrUnsupportedFormat, nil},
		{"mp3 in wav", `{"streams":[{"index":0,"codec_name":"mp3","codec_type":"audio","sample_rate":"48000","channels":2}],"format":{"format_name":"wav","duration":"3"}}`, time.Hour, ErrUnsupportedFormat, nil},
		{"sample rate absurd", `{"streams":[{"index":0,"codec_name":"flac","codec_type":"audio","sample_rate":"1","channels":2}],"format":{"format_name":"flac","duration":"3"}}`, time.Hour, ErrUnsupportedFormat, nil},
		{"too many channels", `{"streams":[{"index":0,"codec_name":"flac","codec_type":"audio","sample_rate":"48000","channels":24}],"format":{"format_name":"flac","duration":"3"}}`, time.Hour, ErrUnsupportedFormat, nil},
		{"empty container", `{"streams":[],"format":{}}`, time.Hour, ErrUndecodable, nil},
		{"not json", `Invalid data found`, time.Hour, ErrUndecodable, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseProbe("in", []byte(tc.json), tc.max)
			if tc.wantKind != nil {
				var pe *ProbeError
				if !errors.Is(err, tc.wantKind) || !errors.As(err, &pe) || pe.Reason == "" {
					t.Fatalf("parseProbe = %v, %v; want *ProbeError of kind %v with a reason", p, err, tc.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseProbe: %v", err)
			}
			tc.check(t, p)
		})
	}
}

// FuzzParseProbe: parseProbe must never panic, and whatever it accepts
// must respect the limits it promises.
func FuzzParseProbe(f *testing.F) {
	for _, s := range []string{flacJSON, oggJSON, m4aJSON, `{}`, `{"format":{"format_name":"mp3"}}`, `[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 30 * time.Minute
		p, err := parseProbe("fuzz", data, max)
		if err != nil {
			var pe *ProbeError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ProbeError", err)
			}
			return
		}
		if p.Duration <= 0 || p.Duration > max {
			t.Errorf("accepted duration %v", p.Duration)
		}
		if p.SampleRate < minSampleRate || p.SampleRate > maxSampleRate || p.Channels < 1 || p.Channels > maxInputChannel {
			t.Errorf("accepted %d Hz %d ch", p.SampleRate, p.Channels)
		}
		if _, ok := lookupContainer(p.Demuxer); !ok {
			t.Errorf("accepted demuxer %q", p.Demuxer)
		}
		for _, s := range []string{p.Tags.Title, p.Tags.Artist, p.Tags.Album, p.Tags.Genre, p.Tags.ISRC} {
			if !utf8.ValidString(s) || len(s) > maxTagLen || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 }) {
				t.Errorf("unclean tag %q", s)
			}
		}
	})
}

func FuzzParseProgressLine(f *testing.F) {
	for _, s := range []string{"out_time_us=1234567", "out_time_ms=5", "progress=end", "out_time_us=-1", "="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if d, ok := parseProgressLine(line); ok && d < 0 {
			t.Errorf("parseProgressLine(%q) = %v", line, d)
		}
	})
}

// TestPackageRefusesBadInput feeds real bad files through Package: each
// must fail with a typed error and leave the store empty.
func TestPackageRefusesBadInput(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flac := genAudio(t, dir, "six.flac", 44100, 2, 6, "-c:a", "flac")
	whole, err := os.ReadFile(flac)
	if err != nil {
		t.Fatal(err)
	}
	videoMP4 := filepath.Join(dir, "video.mp4")
	ffmpegRun(t, "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1", "-c:v", "mpeg4", "file:"+videoMP4)
	videoMKV := filepath.Join(dir, "video.mkv")
	ffmpegRun(t, "-f", "lavfi", "-i", "testsrc=size=64x64:rate=10:duration=1", "-c:v", "mpeg4", "file:"+videoMKV)
	png := filepath.Join(dir, "cover.mp3")
	ffmpegRun(t, "-f", "lavfi", "-i", "testsrc=size=64x64:duration=0.1", "-frames:v", "1", "-f", "image2", "-c:v", "png", "file:"+png)
	long := genAudio(t, dir, "long.flac", 44100, 1, 3, "-c:a", "flac")
	if err := os.Mkdir(filepath.Join(dir, "folder.mp3"), 0o755); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		path string
		max  time.Duration
		want error
	}{
		{"text named mp3", write("notes.mp3", []byte("hello, this is not audio at all\n")), 0, ErrUndecodable},
		{"zero bytes", write("empty.mp3", nil), 0, ErrUndecodable},
		{"truncated flac", write("cut.flac", whole[:len(whole)*6/10]), 0, ErrUndecodable},
		{"flac header only", write("head.flac", whole[:3000]), 0, ErrUndecodable},
		{"video without audio (mp4)", videoMP4, 0, ErrNoAudio},
		{"video without audio (mkv)", videoMKV, 0, ErrUnsupportedFormat},
		{"png named mp3", png, 0, ErrUnsupportedFormat},
		{"a folder", filepath.Join(dir, "folder.mp3"), 0, ErrUnsupportedFormat},
		{"over long", long, 2 * time.Second, ErrDuration},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs, _ := newFS(t)
			tmp := t.TempDir()
			p := New(Config{MaxDuration: tc.max, Ladder: []int{64}, TempDir: tmp})
			_, err := p.Package(context.Background(), tc.path, fs, "songs/9/v1/", nil)
			var pe *ProbeError
			if !errors.Is(err, tc.want) || !errors.As(err, &pe) {
				t.Fatalf("Package(%s) error = %v, want a *ProbeError of kind %v", filepath.Base(tc.path), err, tc.want)
			}
			t.Logf("%v", err)
			if keys := listKeys(t, fs); len(keys) != 0 {
				t.Errorf("store holds %v", keys)
			}
			if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
				t.Errorf("temp dir not cleaned: %v", ents)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := New(Config{}).Probe(context.Background(), filepath.Join(dir, "nope.flac"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Probe(missing) = %v, want fs.ErrNotExist", err)
		}
	})
}

// TestPackageHostileFileNames: valid files whose names look like options,
// shell syntax or protocols are packaged like any other.
func TestPackageHostileFileNames(t *testing.T) {
	testrun.RequireFFmpeg(t)
	for _, name := range []string{"-x;rm *.mp3", "a b'$(touch pwned)`|&\"x.flac", "concat:evil|x.wav"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := genAudio(t, dir, "src.mp3", 44100, 2, 1, "-c:a", "libmp3lame", "-b:a", "128k")
			in := filepath.Join(dir, name)
			ext := filepath.Ext(name)
			if ext != ".mp3" {
				src = genAudio(t, dir, "src"+ext, 44100, 2, 1)
			}
			if err := os.Rename(src, in); err != nil {
				t.Fatal(err)
			}
			fs, _ := newFS(t)
			res, err := New(Config{Ladder: []int{64, 128}}).Package(context.Background(), in, fs, "", nil)
			if err != nil {
				t.Fatalf("Package(%q): %v", name, err)
			}
			if len(res.Renditions) != 4 {
				t.Errorf("renditions = %d", len(res.Renditions))
			}
			for _, d := range []string{dir, "."} {
				if _, err := os.Stat(filepath.Join(d, "pwned")); err == nil {
					t.Errorf("a shell ran (found %s/pwned)", d)
				}
			}
		})
	}
}
