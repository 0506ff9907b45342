package dev

import (
	"fmt"
	"io"
	"testing"
	"time"

	"riff/internal/testrun"
)

// TestParseFlags checks riff dev's flags without touching a file or a port.
func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	s, err := parseFlags([]string{"-data", "d", "-demo=false", "-edge-slice-bytes", "64KiB", "-catalogd-listen", "127.0.0.1:0"},
		env(map[string]string{"RIFF_DEV_WORKERS": "3"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.Data != "d" || s.Demo || s.Workers != 3 || s.EdgeSliceBytes != 64<<10 || s.EdgeCacheBytes != 0 {
		t.Errorf("settings = %+v", s)
	}
	if s.CatalogdListen != "127.0.0.1:0" || s.OriginListen != "127.0.0.1:8081" {
		t.Errorf("parseFlags resolved addresses: %q %q", s.CatalogdListen, s.OriginListen)
	}
	if s.DemoSongs != 4 || s.LogLevel != "warn" || s.TokenTTL != time.Hour || s.FFmpeg != "ffmpeg" {
		t.Errorf("defaults = %+v", s)
	}
	tests := []struct {
		args []string
		want string // in the error; "" means flag.ErrHelp
	}{
		{[]string{"--help"}, ""},
		{[]string{"-demo-songs", "9"}, "dev: -demo-songs 9: want 1 to 4"},
		{[]string{"-demo-songs", "0"}, "-demo-songs 0"},
		{[]string{"-log-level", "loud"}, `dev: log level "loud": want debug, info, warn or error`},
		{[]string{"-edge-slice-bytes", "lots"}, "edge-slice-bytes"},
		{[]string{"-nope"}, "nope"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, env(nil), io.Discard)
		testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", tt.args), err, tt.want)
	}
}
