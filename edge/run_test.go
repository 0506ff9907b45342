package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"riff/internal/playtoken"
)

// syncBuffer collects log lines written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunEndToEnd starts the real Run on :0 ports, waits for /readyz,
// plays an object through it and shuts it down.
func TestRunEndToEnd(t *testing.T) {
	root := testMedia(t)
	o := startOrigin(t, root)
	dir := t.TempDir()
	var keygenOut bytes.Buffer
	if err := playtoken.RunKeygen(context.Background(), []string{"-dir", dir}, os.Getenv, &keygenOut, io.Discard); err != nil {
		t.Fatal(err)
	}
	signer, err := playtoken.LoadSigner(filepath.Join(dir, "signing.key"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
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
		if tt.want == "" {
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("Run(%q) = %v, want flag.ErrHelp", tt.args, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Run(%q) = %v, want an error mentioning %q", tt.args, err, tt.want)
		}
	}
}
