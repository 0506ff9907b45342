package packager

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"riff/internal/testrun"
)

func noEnv(string) string { return "" }

func TestRunHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := Run(context.Background(), []string{"--help"}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("Run --help: %v", err)
	}
	out := stdout.String()
	for _, f := range []string{"-ladder", "-segment", "-formats", "-max-duration", "-concurrency", "-prefix", "-timeout", "-tmp", "INPUT OUTDIR"} {
		if !strings.Contains(out, f) {
			t.Errorf("usage lacks %s:\n%s", f, out)
		}
	}
}

func TestRunBadArgs(t *testing.T) {
	cases := [][]string{
		{},
		{"only-input"},
		{"a", "b", "c"},
		{"-ladder", "64,abc", "in", "out"},
		{"-formats", "mp3", "in", "out"},
		{"-nosuchflag", "in", "out"},
	}
	for _, args := range cases {
		var stdout, stderr bytes.Buffer
		if err := Run(context.Background(), args, noEnv, &stdout, &stderr); err == nil {
			t.Errorf("Run(%q) succeeded", args)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	cases := []struct {
		args    []string
		pos     []string
		ladder  string
		wantErr bool
	}{
		{[]string{"in", "out"}, []string{"in", "out"}, "", false},
		{[]string{"-ladder", "64", "in", "out"}, []string{"in", "out"}, "64", false},
		{[]string{"in", "-ladder", "64", "out"}, []string{"in", "out"}, "64", false},
		{[]string{"in", "out", "-ladder=96"}, []string{"in", "out"}, "96", false},
		// After --, a name starting with a dash is a name.
		{[]string{"-ladder", "64", "--", "-x;rm *.mp3", "out"}, []string{"-x;rm *.mp3", "out"}, "64", false},
		{[]string{"-x;rm *.mp3", "out"}, nil, "", true},
	}
	for _, tc := range cases {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(&bytes.Buffer{})
		ladder := fs.String("ladder", "", "")
		pos, err := parseInterleaved(fs, tc.args)
		if (err != nil) != tc.wantErr || !slices.Equal(pos, tc.pos) || *ladder != tc.ladder {
			t.Errorf("parseInterleaved(%q) = %q, %v, ladder %q; want %q, err %v, ladder %q", tc.args, pos, err, *ladder, tc.pos, tc.wantErr, tc.ladder)
		}
	}
}

// TestRun runs the command end to end on a short clip.
func TestRun(t *testing.T) {
	testrun.RequireFFmpeg(t)
	dir := t.TempDir()
	in := genAudio(t, dir, "-song.flac", 48000, 2, 2, "-c:a", "flac")
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	args := []string{"-ladder", "64,128", "-segment", "1s", "-prefix", "songs/1/v1", "--", in, out}
	if err := Run(context.Background(), args, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, stderr.String())
	}
	for _, name := range []string{"master.m3u8", "manifest.mpd", "aac_64.mp4", "aac_128.m3u8", "ogg_128.ogg"} {
		if _, err := os.Stat(filepath.Join(out, "songs", "1", "v1", name)); err != nil {
			t.Errorf("missing %s: %v", name, err)
		}
	}
	table := stdout.String()
	for _, want := range []string{"RENDITION", "aac_64", "aac_128", "ogg_64", "ogg_128", "2.000s", "48000 Hz, 2 ch", "of transcode"} {
		if !strings.Contains(table, want) {
			t.Errorf("summary lacks %q:\n%s", want, table)
		}
	}
	if !strings.Contains(stderr.String(), "transcode") || !strings.Contains(stderr.String(), "100%") {
		t.Errorf("no progress on stderr: %q", stderr.String())
	}
	// With -segment 1s a 2 s clip has two fragments.
	if pl, err := os.ReadFile(filepath.Join(out, "songs", "1", "v1", "aac_64.m3u8")); err != nil || strings.Count(string(pl), "#EXTINF") != 2 {
		t.Errorf("aac_64.m3u8 (%v):\n%s", err, pl)
	}
}

// TestParseFlags checks what parseFlags makes of good argument sets and
// that it refuses bad ones with Run's errors, touching no file.
func TestParseFlags(t *testing.T) {
	env := map[string]string{"RIFF_FFMPEG": "/opt/ffmpeg"}
	cfg, err := parseFlags([]string{"in.wav", "-ladder", "320k, 64", "out", "-formats", "AAC", "-prefix", "p/"},
		func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.input != "in.wav" || cfg.outDir != "out" || cfg.prefix != "p/" {
		t.Errorf("input, outdir, prefix = %q %q %q", cfg.input, cfg.outDir, cfg.prefix)
	}
	if got, want := cfg.packager.Ladder, []int{64, 320}; !slices.Equal(got, want) {
		t.Errorf("ladder = %v, want %v", got, want)
	}
	if got, want := cfg.packager.Formats, []string{FormatAAC}; !slices.Equal(got, want) {
		t.Errorf("formats = %v, want %v", got, want)
	}
	if cfg.packager.FFmpeg != "/opt/ffmpeg" || cfg.packager.SegmentDuration != DefaultSegmentDuration {
		t.Errorf("ffmpeg, segment = %q, %v", cfg.packager.FFmpeg, cfg.packager.SegmentDuration)
	}
	if cfg, err := parseFlags([]string{"--", "-in", "out"}, noEnv, io.Discard, io.Discard); err != nil || cfg.input != "-in" {
		t.Errorf("-- -in out = %+v, %v; want input -in", cfg, err)
	}

	var stdout bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, noEnv, &stdout, io.Discard); !errors.Is(err, flag.ErrHelp) || !strings.Contains(stdout.String(), "INPUT OUTDIR") {
		t.Errorf("-h = %v with usage %q; want flag.ErrHelp and the usage on stdout", err, stdout.String())
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "package: want INPUT and OUTDIR, got 0 arguments"},
		{[]string{"a", "b", "c"}, "got 3 arguments"},
		{[]string{"-ladder", "64,abc", "in", "out"}, `package: -ladder: "abc" is not a number of kbps`},
		{[]string{"-ladder", ",", "in", "out"}, "package: -ladder: empty"},
		{[]string{"-ladder", "8", "in", "out"}, "package: ladder: 8 kbps outside 16..512"},
		{[]string{"-formats", "mp3", "in", "out"}, `package: formats: unknown format "mp3"`},
		{[]string{"-segment", "100ms", "in", "out"}, "package: segment duration 100ms outside 1s..1m"},
		{[]string{"-nosuchflag", "in", "out"}, "nosuchflag"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, noEnv, io.Discard, io.Discard)
		testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", tt.args), err, tt.want)
	}
}
