package bench

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"riff/internal/testrun"
)

// TestParseFlags checks what parseFlags makes of good argument sets and
// that it refuses bad ones with Run's errors, without opening a connection.
func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseFlags([]string{"-playlist", " http://e/a.m3u8, ,http://e/b.m3u8", "-json", "r.json", "-max-error-rate", "1%"},
		env(map[string]string{"RIFF_BENCH_DURATION": "3s"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.opt
	if o.Scenario != "listen" || o.Duration != 3*time.Second || o.Conns != 64 || o.Listeners != 10 {
		t.Errorf("scenario, duration, conns, listeners = %q %v %d %d", o.Scenario, o.Duration, o.Conns, o.Listeners)
	}
	if got, want := o.Playlists, []string{"http://e/a.m3u8", "http://e/b.m3u8"}; !slices.Equal(got, want) {
		t.Errorf("playlists = %q, want %q", got, want)
	}
	if o.MaxErrorRate != 0.01 || o.MinHitRatio != -1 || o.MaxRebufferRatio != -1 {
		t.Errorf("thresholds = %v %v %v; want 0.01 and unset (-1)", o.MaxErrorRate, o.MinHitRatio, o.MaxRebufferRatio)
	}
	if cfg.jsonPath != "r.json" || cfg.htmlPath != "" {
		t.Errorf("report files = %q %q", cfg.jsonPath, cfg.htmlPath)
	}
	if o.SessionSongs != 3 || o.MaxSessions != 10000 || o.Buffer != 30*time.Second {
		t.Errorf("session songs, max sessions, buffer = %d %d %v", o.SessionSongs, o.MaxSessions, o.Buffer)
	}
	if cfg, err := parseFlags([]string{"flat", "-urls", "u.txt", "-rate", "100"}, env(nil), io.Discard); err != nil ||
		cfg.opt.Scenario != "flat" || cfg.opt.URLFile != "u.txt" || cfg.opt.Rate != 100 {
		t.Errorf("flat -urls u.txt -rate 100 = %+v, %v", cfg.opt, err)
	}

	tests := []struct {
		args []string
		want string // in the error; "" means flag.ErrHelp
	}{
		{[]string{"--help"}, ""},
		{[]string{"fly", "-urls", "u"}, `bench: unknown scenario "fly": want listen or flat`},
		{[]string{"flat"}, "bench: give exactly one source"},
		{[]string{"flat", "-urls", "u", "-playlist", "http://x/y.m3u8"}, "give exactly one source"},
		{[]string{"-catalogd", "http://127.0.0.1:1"}, "bench: -catalogd needs -email and -password"},
		{[]string{"-urls", "u", "-duration", "0s"}, "bench: -duration must be positive"},
		{[]string{"-urls", "u", "-conns", "0"}, "-conns at least 1"},
		{[]string{"-urls", "u", "-rate", "-1"}, "bench: -rate and -speed must not be negative"},
		{[]string{"-urls", "u", "-listeners", "0"}, "bench: -listeners must be at least 1"},
		{[]string{"-urls", "u", "-zipf", "0.5"}, "bench: -zipf 0.5: want an exponent above 1"},
		{[]string{"-urls", "u", "-variant", "best"}, `bench: -variant "best"`},
		{[]string{"-urls", "u", "-min-hit-ratio", "x"}, "want a number ≥ 0"},
		{[]string{"-nope"}, "nope"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, env(nil), io.Discard)
		testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", tt.args), err, tt.want)
	}
}
