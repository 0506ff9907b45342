package keygen

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"riff/internal/playtoken"
	"riff/internal/testrun"
)

// playClaims are the claims the rotation test mints.
var playClaims = playtoken.Claims{Type: playtoken.TypePlay, Subject: "user-42", Prefix: "artists/1/albums/2/songs/3/", MaxKbps: 128}

func keygen(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
	return strings.TrimSpace(stdout.String()), err
}

func TestKeygenAndRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	kid1, err := keygen(t, nil, "-dir", dir)
	if err != nil {
		t.Fatalf("keygen: %v", err)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d-[A-Za-z0-9_-]{8}$`).MatchString(kid1) {
		t.Errorf("default kid = %q, want date-thumbprint", kid1)
	}
	keyPath, jwksPath := filepath.Join(dir, playtoken.SigningKeyFile), filepath.Join(dir, playtoken.JWKSFile)
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("signing.key mode = %v, want 0600", got)
	}
	s1, err := playtoken.LoadSigner(keyPath, nil)
	if err != nil {
		t.Fatalf("playtoken.LoadSigner: %v", err)
	}
	if s1.KID() != kid1 {
		t.Errorf("playtoken.LoadSigner kid = %q, want %q", s1.KID(), kid1)
	}
	tok1, err := s1.Mint(playClaims, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// Rotate, with the kid taken from the environment.
	kid2, err := keygen(t, map[string]string{"RIFF_KEYGEN_KID": "second"}, "-dir", dir)
	if err != nil || kid2 != "second" {
		t.Fatalf("second keygen = %q, %v; want kid second", kid2, err)
	}
	s2, err := playtoken.LoadSigner(keyPath, nil)
	if err != nil || s2.KID() != "second" {
		t.Fatalf("playtoken.LoadSigner after rotation = %v, %v; want kid second", s2, err)
	}
	ks, err := playtoken.LoadKeySet(jwksPath)
	if err != nil {
		t.Fatalf("playtoken.LoadKeySet: %v", err)
	}
	if got, want := ks.KIDs(), []string{kid1, "second"}; !slices.Equal(got, want) {
		t.Errorf("jwks kids = %v, want %v", got, want)
	}
	tok2, err := s2.Mint(playClaims, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := playtoken.NewVerifier(ks, playtoken.VerifierOptions{})
	for i, tok := range []string{tok1, tok2} {
		if _, err := v.Verify([]byte(tok), playtoken.TypePlay); err != nil {
			t.Errorf("token of key %d after rotation: %v", i+1, err)
		}
	}
	// jwks.json holds public keys only.
	data, _ := os.ReadFile(jwksPath)
	if bytes.Contains(data, []byte(`"d"`)) {
		t.Errorf("jwks.json holds a private key:\n%s", data)
	}
	// Re-using a kid is refused and leaves the files alone.
	before, _ := os.ReadFile(keyPath)
	if _, err := keygen(t, nil, "-dir", dir, "-kid", "second"); err == nil {
		t.Error("keygen with an existing kid: no error")
	}
	if after, _ := os.ReadFile(keyPath); !bytes.Equal(before, after) {
		t.Error("a refused keygen replaced signing.key")
	}
	// No temporary files are left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("dir holds %v, want signing.key and jwks.json", names)
	}
}

func TestKeygenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := keygen(t, nil); err == nil || !strings.Contains(err.Error(), "-dir") {
		t.Errorf("keygen without -dir: %v, want an error naming -dir", err)
	}
	if _, err := keygen(t, nil, "-dir", dir, "-kid", "bad kid"); err == nil {
		t.Error("keygen -kid 'bad kid': no error")
	}
	if _, err := keygen(t, nil, "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("keygen -h: %v, want flag.ErrHelp", err)
	}
	os.WriteFile(filepath.Join(dir, playtoken.JWKSFile), []byte("not json"), 0o644)
	if _, err := keygen(t, nil, "-dir", dir); err == nil {
		t.Error("keygen over a corrupt jwks.json: no error")
	}
	if _, err := os.Stat(filepath.Join(dir, playtoken.SigningKeyFile)); err == nil {
		t.Error("keygen over a corrupt jwks.json wrote a signing key")
	}
}

// TestParseFlags checks parseFlags's good and bad flag sets; it touches no
// file.
func TestParseFlags(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		args []string
		env  map[string]string
		want runConfig
		err  string // in the error; "-h" means flag.ErrHelp
	}{
		{args: []string{"-dir", "d"}, want: runConfig{dir: "d"}},
		{args: []string{"-dir", "d", "-kid", "k.1_x-y"}, want: runConfig{dir: "d", kid: "k.1_x-y"}},
		{env: map[string]string{"RIFF_KEYGEN_DIR": "e", "RIFF_KEYGEN_KID": "k"}, want: runConfig{dir: "e", kid: "k"}},
		{args: []string{"-h"}, err: "-h"},
		{args: nil, err: "keygen: -dir is required"},
		{args: []string{"-dir", "d", "-kid", "bad kid"}, err: `keygen: kid "bad kid": only letters, digits`},
		{args: []string{"-dir", "d", "-kid", strings.Repeat("k", 65)}, err: "want 1 to 64 characters"},
		{args: []string{"-nope"}, err: "nope"},
	}
	for _, tt := range tests {
		got, err := parseFlags(tt.args, env(tt.env), io.Discard)
		switch {
		case tt.err == "-h":
			testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", tt.args), err, "")
		case tt.err != "":
			testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", tt.args), err, tt.err)
		case err != nil || got != tt.want:
			t.Errorf("parseFlags(%q, %v) = %+v, %v; want %+v", tt.args, tt.env, got, err, tt.want)
		}
	}
}
