package packager

import (
	"context"
	"errors"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestExecKillsAtDeadline: a hung tool is killed when the deadline passes
// and the error says so.
func TestExecKillsAtDeadline(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	p := New(Config{})
	start := time.Now()
	err = p.exec(context.Background(), 200*time.Millisecond, sleep, []string{"30"}, nil)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("exec returned after %v, want about 200ms", el)
	}
	var ee *ExecError
	if !errors.As(err, &ee) || !errors.Is(err, context.DeadlineExceeded) || ee.Tool != "sleep" {
		t.Fatalf("err = %v, want an *ExecError wrapping context.DeadlineExceeded", err)
	}
}

// TestExecKeepsStderrTail: the error carries the end of stderr, not the
// beginning, and no more than stderrTail bytes of it.
func TestExecKeepsStderrTail(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	p := New(Config{})
	// sh is the tool under test here; the packager never runs a shell.
	script := `i=0; while [ $i -lt 2000 ]; do echo "line $i" >&2; i=$((i+1)); done; echo "the real reason" >&2; exit 3`
	err = p.exec(context.Background(), 10*time.Second, sh, []string{"-c", script}, nil)
	var ee *ExecError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(ee.Stderr), "the real reason") || len(ee.Stderr) > stderrTail {
		t.Errorf("stderr tail (%d bytes) ends %q", len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-40):])
	}
	if !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("error %q lacks the exit status", err)
	}
}

func TestTailBuffer(t *testing.T) {
	cases := []struct {
		writes []string
		want   string
	}{
		{[]string{"abc"}, "abc"},
		{[]string{"abc", "defg"}, "bcdefg"},
		{[]string{"0123456789"}, "456789"},
		{[]string{"ab", "0123456789", "xy"}, "6789xy"},
	}
	for _, tc := range cases {
		tb := &tailBuffer{max: 6}
		for _, w := range tc.writes {
			if n, err := tb.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
		}
		if got := tb.String(); got != tc.want {
			t.Errorf("writes %q: tail = %q, want %q", tc.writes, got, tc.want)
		}
	}
}

// TestFFmpegArgs pins the safety properties of the encode command line.
func TestFFmpegArgs(t *testing.T) {
	p := New(Config{})
	pr := &Probe{Demuxer: "mp3", Channels: 2, SampleRate: 44100}
	j := &job{name: "aac_128", format: FormatAAC, bitrate: 128000, sampleRate: 44100, channels: 2, out: "/tmp/x/enc-aac_128.mp4"}
	args := p.ffmpegArgs("/up/-x;rm *.mp3", pr, j)
	has := func(seq ...string) bool {
		for i := 0; i+len(seq) <= len(args); i++ {
			if slices.Equal(args[i:i+len(seq)], seq) {
				return true
			}
		}
		return false
	}
	for _, seq := range [][]string{
		{"-nostdin"},
		{"-protocol_whitelist", "file,pipe"},
		{"-format_whitelist", demuxerWhitelist},
		{"-f", "mp3", "-i", "file:/up/-x;rm *.mp3"},
		{"-map", "0:a:0"},
		{"-c:a", "aac"},
		{"-ar", "44100"},
		{"-y", "file:/tmp/x/enc-aac_128.mp4"},
	} {
		if !has(seq...) {
			t.Errorf("args lack %q: %q", seq, args)
		}
	}
	// The input is the only -i, and it comes after every input option.
	if n := strings.Count(strings.Join(args, "\x00"), "\x00-i\x00"); n != 1 {
		t.Errorf("%d -i in %q", n, args)
	}
}

func TestLadderRate(t *testing.T) {
	for _, tc := range []struct{ in, want int }{
		{44100, 44100}, {22050, 44100}, {88200, 44100}, {176400, 44100}, {11025, 44100},
		{48000, 48000}, {96000, 48000}, {32000, 48000}, {8000, 48000}, {192000, 48000},
	} {
		if got := ladderRate(tc.in); got != tc.want {
			t.Errorf("ladderRate(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{}, true},
		{"one rung", Config{Ladder: []int{96}, Formats: []string{FormatOgg}}, true},
		{"duplicate rung", Config{Ladder: []int{64, 64}}, false},
		{"absurd rung", Config{Ladder: []int{5000}}, false},
		{"unknown format", Config{Formats: []string{"mp3"}}, false},
		{"tiny segments", Config{SegmentDuration: 100 * time.Millisecond}, false},
	}
	for _, tc := range cases {
		err := New(tc.cfg).err
		if (err == nil) != tc.ok {
			t.Errorf("%s: validate = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if _, err := New(Config{Ladder: []int{1}}).Package(context.Background(), "x", nil, "", nil); err == nil {
		t.Error("Package with a bad config did not fail")
	}
}
