package packager

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
	requireFFmpeg(t)
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
