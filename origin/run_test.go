package origin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"riff/internal/blob"
	"riff/internal/obs"
	"riff/internal/testrun"
)

// logBuffer collects the JSON log lines Run writes from several goroutines.
type logBuffer struct{ testrun.LockedBuffer }

// record returns the first log record with message msg, waiting for it.
func (l *logBuffer) record(t *testing.T, msg string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(l.String()))
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == msg {
				return rec
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q log line in:\n%s", msg, l.String())
	return nil
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	fs, err := blob.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Put(context.Background(), mediaKey, strings.NewReader("hello, edge"), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	fs.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{"RIFF_ORIGIN_SECRET": "from-env"}
	logs := &logBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"-listen", "127.0.0.1:0", "-admin-listen", "127.0.0.1:0", "-blob", dir},
			func(k string) string { return env[k] }, io.Discard, logs)
	}()
	rec := logs.record(t, "listening")
	base, admin := "http://"+rec["addr"].(string), "http://"+rec["admin_addr"].(string)
	if rec["secret_required"] != true {
		t.Errorf("secret from RIFF_ORIGIN_SECRET not applied: %v", rec)
	}

	get := func(url string, hdr ...string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get(admin + "/readyz"); code != 200 {
		t.Errorf("admin /readyz = %d", code)
	}
	if code, body := get(admin + "/metrics"); code != 200 || !strings.Contains(body, "riff_origin_sent_bytes_total") {
		t.Errorf("admin /metrics = %d", code)
	}
	if code, _ := get(admin + "/" + mediaKey); code != 404 {
		t.Errorf("admin listener served an object: %d", code)
	}
	if code, _ := get(base + "/healthz"); code != 403 {
		t.Errorf("main listener /healthz with a separate admin listener = %d, want 403 (treated as content)", code)
	}
	if code, body := get(base+"/"+mediaKey, HeaderSecret, "from-env", "Range", "bytes=7-"); code != 206 || body != "edge" {
		t.Errorf("GET range = %d %q, want 206 edge", code, body)
	}
	if code, _ := get(base + "/" + mediaKey); code != 403 {
		t.Errorf("GET without secret = %d, want 403", code)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get(base + "/" + mediaKey); err == nil {
		t.Error("still serving after Run returned")
	}
}

func TestRunFlagErrors(t *testing.T) {
	env := func(string) string { return "" }
	if err := Run(context.Background(), []string{"-h"}, env, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("Run -h = %v, want flag.ErrHelp", err)
	}
	if err := Run(context.Background(), []string{"-log-level", "loud"}, env, io.Discard, io.Discard); err == nil {
		t.Error("Run -log-level loud: no error")
	}
	if err := Run(context.Background(), []string{"-blob", "ftp://x", "-listen", "127.0.0.1:0"}, env, io.Discard, io.Discard); err == nil {
		t.Error("Run -blob ftp://x: no error")
	}
	if err := Run(context.Background(), []string{"-blob", t.TempDir(), "-listen", "256.0.0.1:0"}, env, io.Discard, io.Discard); err == nil {
		t.Error("Run with a bad -listen: no error")
	}
}

// TestParseFlags checks what parseFlags makes of good flag sets and that it
// refuses bad ones with Run's errors, without opening or starting anything.
func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	cfg, err := parseFlags(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := runConfig{
		listen:  "127.0.0.1:8081",
		blobURL: "data/blob",
		server: ServerConfig{
			Admin:        true,
			StoreTimeout: 30 * time.Second,
			WriteTimeout: 2 * time.Minute,
		},
		shutdownTimeout: 15 * time.Second,
		telemetry:       obs.Telemetry{Errors: obs.ErrorTracking{Environment: "production"}, Tracing: obs.Tracing{Ratio: 0.01}},
	}
	if cfg.logger == nil {
		t.Error("defaults: no logger")
	}
	cfg.logger = nil
	if cfg != want {
		t.Errorf("defaults = %+v, want %+v", cfg, want)
	}

	cfg, err = parseFlags([]string{"-admin-listen", "127.0.0.1:9", "-blob", "s3://b", "-store-timeout", "1s", "-sentry-environment", "staging"},
		env(map[string]string{"RIFF_ORIGIN_SECRET": "s", "RIFF_ORIGIN_SHUTDOWN_TIMEOUT": "2s", "RIFF_ORIGIN_SENTRY_DSN": "https://k@sentry.example/3", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.logger = nil
	want = runConfig{
		listen:      "127.0.0.1:8081",
		adminListen: "127.0.0.1:9",
		blobURL:     "s3://b",
		server: ServerConfig{
			Secret:       "s",
			StoreTimeout: time.Second,
			WriteTimeout: 2 * time.Minute,
		},
		shutdownTimeout: 2 * time.Second,
		telemetry: obs.Telemetry{
			Errors:  obs.ErrorTracking{DSN: "https://k@sentry.example/3", Environment: "staging"},
			Tracing: obs.Tracing{Endpoint: "http://collector:4318", Ratio: 0.01},
		},
	}
	if cfg != want {
		t.Errorf("flags and environment = %+v, want %+v", cfg, want)
	}

	tests := []struct {
		args []string
		want string // in the error; "" means flag.ErrHelp
	}{
		{[]string{"-h"}, ""},
		{[]string{"-log-level", "loud"}, `origin: log level "loud": want debug, info, warn or error`},
		{[]string{"-store-timeout", "soon"}, "store-timeout"},
		{[]string{"-nope"}, "nope"},
		{[]string{"-sentry-dsn", "sentry.example/3"}, `origin: -sentry-dsn "(unparsable)": want https://KEY@HOST/PROJECT`},
	}
	for _, tt := range tests {
		_, err := parseFlags(tt.args, env(nil), io.Discard)
		testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", tt.args), err, tt.want)
	}
}
