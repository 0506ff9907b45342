package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type settings struct {
	listen  string
	cache   ByteSize
	timeout time.Duration
	origins string
	verbose bool
}

func newFlags(s *settings) *flag.FlagSet {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(new(bytes.Buffer))
	fs.StringVar(&s.listen, "listen", "127.0.0.1:8082", "public `address`")
	s.cache = 512 << 20
	fs.Var(&s.cache, "cache-bytes", "cache budget")
	fs.DurationVar(&s.timeout, "origin-timeout", 2*time.Second, "origin timeout")
	fs.StringVar(&s.origins, "origin", "", "origins, comma-separated")
	fs.BoolVar(&s.verbose, "verbose", false, "log more")
	return fs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "listen: file:1\ncache-bytes: 1GiB\norigin-timeout: 7s\norigin: [http://a:1, http://b:2]\nverbose: true\n")
	var s settings
	fs := newFlags(&s)
	err := Load(fs, []string{"-config", file, "-listen", "flag:1"}, env(map[string]string{
		"RIFF_LISTEN":           "env:1",
		"RIFF_EDGE_CACHE_BYTES": "2MiB",
		"RIFF_CACHE_BYTES":      "3MiB",
	}), "edge")
	if err != nil {
		t.Fatal(err)
	}
	if s.listen != "flag:1" {
		t.Errorf("listen = %q, want the flag's value", s.listen)
	}
	if s.cache != 2<<20 {
		t.Errorf("cache-bytes = %v, want 2MiB from RIFF_EDGE_CACHE_BYTES", s.cache)
	}
	if s.timeout != 7*time.Second || s.origins != "http://a:1,http://b:2" || !s.verbose {
		t.Errorf("file values not applied: %+v", s)
	}

	// Defaults stay when nothing else says otherwise.
	var d settings
	if err := Load(newFlags(&d), nil, env(nil), "edge"); err != nil {
		t.Fatal(err)
	}
	if d.listen != "127.0.0.1:8082" || d.cache != 512<<20 || d.timeout != 2*time.Second {
		t.Errorf("defaults changed: %+v", d)
	}

	// The config path itself can come from the environment.
	var e settings
	if err := Load(newFlags(&e), nil, env(map[string]string{"RIFF_EDGE_CONFIG": file}), "edge"); err != nil {
		t.Fatal(err)
	}
	if e.listen != "file:1" {
		t.Errorf("listen = %q, want file:1 via RIFF_EDGE_CONFIG", e.listen)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name, file string
		args       []string
		env        map[string]string
		want       string
	}{
		{"unknown key", "listen: x\ncahce-bytes: 1\n", nil, nil, `unknown key "cahce-bytes"`},
		{"bad duration", "origin-timeout: soon\n", nil, nil, `key "origin-timeout"`},
		{"bad size", "cache-bytes: lots\n", nil, nil, `key "cache-bytes"`},
		{"nested map", "listen:\n  host: x\n", nil, nil, `key "listen": want a plain value`},
		{"duplicate", "listen: a\nlisten: b\n", nil, nil, `"listen"`},
		{"not a mapping", "- a\n- b\n", nil, nil, "want a mapping"},
		{"bad env", "", nil, map[string]string{"RIFF_EDGE_ORIGIN_TIMEOUT": "x"}, "RIFF_EDGE_ORIGIN_TIMEOUT"},
		{"bad flag", "", []string{"-origin-timeout", "x"}, nil, "origin-timeout"},
		{"stray argument", "", []string{"junk", "-listen", "x"}, nil, `unexpected argument "junk"`},
		{"config key in file", "config: other.yaml\n", nil, nil, `unknown key "config"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s settings
			args := tt.args
			if tt.file != "" {
				args = append([]string{"-config", writeFile(t, tt.file)}, args...)
			}
			err := Load(newFlags(&s), args, env(tt.env), "edge")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Load = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	var s settings
	err := Load(newFlags(&s), []string{"-config", "/nonexistent/edge.yaml"}, env(nil), "edge")
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load = %v, want ErrNotExist", err)
	}
}

func TestHelpListsEveryFlagAndItsEnv(t *testing.T) {
	var s settings
	fs := newFlags(&s)
	var out bytes.Buffer
	fs.SetOutput(&out)
	if err := Load(fs, []string{"--help"}, env(nil), "edge"); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("Load(--help) = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-listen address", "-cache-bytes", "-origin-timeout", "-config file", "env RIFF_EDGE_CACHE_BYTES\n", `(default "512MiB")`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestTakesArgs(t *testing.T) {
	var s settings
	fs := newFlags(&s)
	TakesArgs(fs, "INPUT OUTDIR")
	if err := Load(fs, []string{"-listen", "x", "in.wav", "out"}, env(nil), "package"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(fs.Args(), " "); got != "in.wav out" {
		t.Errorf("Args = %q", got)
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"0", 0, true}, {"1048576", 1 << 20, true}, {"512MiB", 512 << 20, true}, {"1GiB", 1 << 30, true},
		{"2 MB", 2e6, true}, {"64K", 64 << 10, true}, {"10B", 10, true},
		{"", 0, false}, {"-1", 0, false}, {"1.5GiB", 0, false}, {"lots", 0, false}, {"9999999999TiB", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	if got := ByteSize(512 << 20).String(); got != "512MiB" {
		t.Errorf("String = %q", got)
	}
}
