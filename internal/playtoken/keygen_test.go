package playtoken

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func keygen(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := RunKeygen(context.Background(), args, func(k string) string { return env[k] }, &stdout, &stderr)
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
	keyPath, jwksPath := filepath.Join(dir, SigningKeyFile), filepath.Join(dir, JWKSFile)
	fi, err := os.Stat(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("signing.key mode = %v, want 0600", got)
	}
	s1, err := LoadSigner(keyPath, nil)
	if err != nil {
		t.Fatalf("LoadSigner: %v", err)
	}
	if s1.KID() != kid1 {
		t.Errorf("LoadSigner kid = %q, want %q", s1.KID(), kid1)
	}
	tok1, err := s1.Mint(playClaims(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	// Rotate, with the kid taken from the environment.
	kid2, err := keygen(t, map[string]string{"RIFF_KEYGEN_KID": "second"}, "-dir", dir)
	if err != nil || kid2 != "second" {
		t.Fatalf("second keygen = %q, %v; want kid second", kid2, err)
	}
	s2, err := LoadSigner(keyPath, nil)
	if err != nil || s2.KID() != "second" {
		t.Fatalf("LoadSigner after rotation = %v, %v; want kid second", s2, err)
	}
	ks, err := LoadKeySet(jwksPath)
	if err != nil {
		t.Fatalf("LoadKeySet: %v", err)
	}
	if got, want := ks.KIDs(), []string{kid1, "second"}; !slices.Equal(got, want) {
		t.Errorf("jwks kids = %v, want %v", got, want)
	}
	tok2, err := s2.Mint(playClaims(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(ks, VerifierOptions{})
	for i, tok := range []string{tok1, tok2} {
		if _, err := v.Verify([]byte(tok), TypePlay); err != nil {
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
	os.WriteFile(filepath.Join(dir, JWKSFile), []byte("not json"), 0o644)
	if _, err := keygen(t, nil, "-dir", dir); err == nil {
		t.Error("keygen over a corrupt jwks.json: no error")
	}
	if _, err := os.Stat(filepath.Join(dir, SigningKeyFile)); err == nil {
		t.Error("keygen over a corrupt jwks.json wrote a signing key")
	}
}
