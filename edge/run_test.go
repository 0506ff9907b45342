package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"riff/internal/playtoken"
	"riff/internal/testrun"
	"riff/keygen"
)

// TestRunEndToEnd starts the real Run on :0 ports, waits for /readyz,
// plays an object through it and shuts it down.
func TestRunEndToEnd(t *testing.T) {
	root := testMedia(t)
	o := startOrigin(t, root)
	dir := t.TempDir()
	var keygenOut bytes.Buffer
	if err := keygen.Run(context.Background(), []string{"-dir", dir}, os.Getenv, &keygenOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	signer, err := playtoken.LoadSigner(filepath.Join(dir, "signing.key"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testrun.LockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := map[string]string{"RIFF_EDGE_ORIGIN_SECRET": testSecret}
	go func() {
		done <- Run(ctx, []string{
			"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0",
			"-origin", "http://127.0.0.1:1," + o.url, // a dead primary, then a live fallback
			"-keys", filepath.Join(dir, "jwks.json"),
			"-cache-bytes", "16MiB", "-slice-bytes", "256KiB", "-origin-timeout", "1s",
		}, func(k string) string { return env[k] }, io.Discard, logs)
	}()
	var public, admin string
	deadline := time.Now().Add(10 * time.Second)
	for public == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line in the logs:\n%s", logs)
		}
		for line := range strings.SplitSeq(logs.String(), "\n") {
			var rec struct{ Msg, Public, Admin string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "edge listening" {
				public, admin = "http://"+rec.Public, "http://"+rec.Admin
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c := &fasthttp.Client{}
	for {
		r, err := doRequest(c, "GET", admin+"/readyz", nil)
		if err == nil && r.status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	tok, err := signer.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "u", Prefix: songA, MaxKbps: 128}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r, err := doRequest(c, "GET", public+"/t/"+tok+"/"+songA+"master.m3u8", nil)
	if err != nil || r.status != 200 || bytes.Contains(r.body, []byte("aac_320")) {
		t.Fatalf("master through Run = %v %d\n%s", err, r.status, r.body)
	}
	ffplay(t, public+"/t/"+tok+"/"+songA+"master.m3u8")
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !strings.Contains(logs.String(), "edge stopped") {
		t.Errorf("no stop line in the logs:\n%s", logs)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	getenv := func(string) string { return "" }
	tests := []struct {
		args []string
		want string // in the error; "" means flag.ErrHelp
	}{
		{[]string{"-h"}, ""},
		{[]string{}, "-keys is required"},
		{[]string{"-keys", "/nonexistent/jwks.json"}, "jwks.json"},
		{[]string{"-keys", "k", "-tls-cert", "c"}, "go together"},
		{[]string{"-keys", "k", "-slice-bytes", "1KiB"}, "slice-bytes"},
		{[]string{"-keys", "k", "-cache-bytes", "512KiB"}, "smaller than a slice"},
		{[]string{"-nope"}, "nope"},
	}
	for _, tt := range tests {
		err := Run(context.Background(), tt.args, getenv, io.Discard, io.Discard)
		testrun.WantFlagError(t, fmt.Sprintf("Run(%q)", tt.args), err, tt.want)
	}
}

// TestParseFlags checks what parseFlags makes of good flag sets and that it
// refuses bad ones with Run's errors, without starting anything.
func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	t.Run("defaults", func(t *testing.T) {
		cfg, err := parseFlags([]string{"-keys", "jwks.json"}, env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.listen != "127.0.0.1:8082" || cfg.adminListen != "127.0.0.1:9082" || cfg.keys != "jwks.json" {
			t.Errorf("addresses and keys = %q %q %q", cfg.listen, cfg.adminListen, cfg.keys)
		}
		if got, want := cfg.origins.URLs, []string{"http://127.0.0.1:8081"}; !slices.Equal(got, want) {
			t.Errorf("origins = %q, want %q", got, want)
		}
		if cfg.server.CacheBytes != 512<<20 || cfg.server.SliceBytes != 1<<20 {
			t.Errorf("cache, slice bytes = %d, %d; want 512MiB, 1MiB", cfg.server.CacheBytes, cfg.server.SliceBytes)
		}
		if got, want := cfg.server.WaitTimeout, 6*time.Second; got != want {
			t.Errorf("wait timeout = %v, want %v (one origin timeout per origin, plus 1s)", got, want)
		}
		if cfg.server.NegativeTTL != 10*time.Second || cfg.shutdownTimeout != 30*time.Second {
			t.Errorf("negative TTL, shutdown timeout = %v, %v", cfg.server.NegativeTTL, cfg.shutdownTimeout)
		}
		if cfg.logger == nil {
			t.Error("no logger")
		}
	})
	t.Run("flags and environment", func(t *testing.T) {
		cfg, err := parseFlags([]string{
			"-keys", "k", "-origin", " http://a:1, ,https://b ", "-origin-timeout", "2s",
			"-negative-ttl", "0", "-slice-bytes", "256KiB", "-tls-cert", "c", "-tls-key", "k",
			"-disk-cache", "/var/cache/riff", "-disk-cache-bytes", "2GiB",
			"-access-log", "-", "-trusted-proxies", "10.0.0.0/8, 192.0.2.1,::1",
		}, env(map[string]string{"RIFF_EDGE_ORIGIN_SECRET": "s", "RIFF_EDGE_CACHE_BYTES": "1MiB"}), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := cfg.origins.URLs, []string{"http://a:1", "https://b"}; !slices.Equal(got, want) {
			t.Errorf("origins = %q, want %q", got, want)
		}
		if cfg.origins.Secret != "s" || cfg.origins.Timeout != 2*time.Second {
			t.Errorf("origin secret, timeout = %q, %v", cfg.origins.Secret, cfg.origins.Timeout)
		}
		if got, want := cfg.server.WaitTimeout, 5*time.Second; got != want {
			t.Errorf("wait timeout = %v, want %v", got, want)
		}
		if cfg.server.NegativeTTL >= 0 {
			t.Errorf("-negative-ttl 0: NegativeTTL = %v, want negative (off)", cfg.server.NegativeTTL)
		}
		if cfg.server.CacheBytes != 1<<20 || cfg.server.SliceBytes != 256<<10 {
			t.Errorf("cache, slice bytes = %d, %d", cfg.server.CacheBytes, cfg.server.SliceBytes)
		}
		if cfg.server.TLSCertFile != "c" || cfg.server.TLSKeyFile != "k" {
			t.Errorf("tls = %q %q", cfg.server.TLSCertFile, cfg.server.TLSKeyFile)
		}
		if got, want := fmt.Sprint(cfg.trustedProxies), "[10.0.0.0/8 192.0.2.1/32 ::1/128]"; got != want || cfg.accessLog != "-" {
			t.Errorf("access log %q, trusted proxies %s, want - and %s", cfg.accessLog, got, want)
		}
		if d := cfg.disk; d == nil || d.Dir != "/var/cache/riff" || d.MaxBytes != 2<<30 || d.SliceBytes != 256<<10 {
			t.Errorf("disk tier = %+v", d)
		}
	})
	tests := []struct {
		args []string
		want string // in the error; "" means flag.ErrHelp
	}{
		{[]string{"-h"}, ""},
		{[]string{}, "edge: -keys is required"},
		{[]string{"-keys", "k", "-tls-cert", "c"}, "edge: -tls-cert and -tls-key go together"},
		{[]string{"-keys", "k", "-tls-key", "k"}, "go together"},
		{[]string{"-keys", "k", "-slice-bytes", "1KiB"}, "edge: -slice-bytes 1KiB: want 4KiB to 64MiB"},
		{[]string{"-keys", "k", "-slice-bytes", "65MiB"}, "want 4KiB to 64MiB"},
		{[]string{"-keys", "k", "-negative-ttl", "-1s"}, "edge: -negative-ttl -1s: want 0 (off) or more"},
		{[]string{"-keys", "k", "-cache-bytes", "512KiB"}, "edge: -cache-bytes 512KiB is smaller than a slice"},
		{[]string{"-keys", "k", "-disk-cache", "d"}, "edge: -disk-cache-bytes 0: want at least four slices with -disk-cache"},
		{[]string{"-keys", "k", "-disk-cache-bytes", "1GiB"}, "edge: -disk-cache-bytes needs -disk-cache"},
		{[]string{"-keys", "k", "-trusted-proxies", "10.0.0.0/8,proxy"}, `edge: -trusted-proxies: "proxy" is neither a CIDR nor an address`},
		{[]string{"-keys", "k", "-log-level", "loud"}, `edge: log level "loud"`},
		{[]string{"-keys", "k", "-origin", ""}, "edge: no origin"},
		{[]string{"-keys", "k", "-origin", "ftp://a"}, `edge: origin "ftp://a": want http(s)://host:port`},
		{[]string{"-keys", "k", "-origin", "http://a/path"}, "want http(s)://host:port"},
		{[]string{"-keys", "k", "-origin", "http://a,http://a:80"}, `edge: origin "http://a:80" listed twice`},
		{[]string{"-nope"}, "nope"},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, env(nil), io.Discard)
		testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", tt.args), err, tt.want)
	}
}
