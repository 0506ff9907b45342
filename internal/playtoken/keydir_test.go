package playtoken

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGenerateKeyAndLoadKeyDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	now := func() time.Time { return time.Date(2026, 3, 1, 23, 0, 0, 0, time.FixedZone("x", -2*3600)) }
	kid, err := GenerateKey(dir, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(kid, "2026-03-02-") || len(kid) != len("2026-03-02-")+8 {
		t.Errorf("default kid = %q, want the UTC date and 8 thumbprint characters", kid)
	}
	kd, err := LoadKeyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if kd.KID != kid || len(kd.Key) == 0 {
		t.Errorf("LoadKeyDir = kid %q, %d-byte key; want kid %q", kd.KID, len(kd.Key), kid)
	}
	if got := kd.Public.KIDs(); !slices.Equal(got, []string{kid}) {
		t.Errorf("LoadKeyDir public kids = %v, want [%s]", got, kid)
	}

	// Without jwks.json the folder still loads, with no published set.
	os.Remove(filepath.Join(dir, JWKSFile))
	if kd, err := LoadKeyDir(dir); err != nil || kd.Public != nil || kd.KID != kid {
		t.Errorf("LoadKeyDir without jwks.json = %+v, %v; want kid %q and no public set", kd, err, kid)
	}
	os.WriteFile(filepath.Join(dir, JWKSFile), []byte("not json"), 0o644)
	if _, err := LoadKeyDir(dir); err == nil || !strings.Contains(err.Error(), "jwks") {
		t.Errorf("LoadKeyDir with a corrupt jwks.json = %v, want a jwks error", err)
	}
	empty := t.TempDir()
	if _, err := LoadKeyDir(empty); err == nil || !strings.Contains(err.Error(), "signing key: ") ||
		!strings.Contains(err.Error(), "riff keygen -dir "+empty) {
		t.Errorf("LoadKeyDir of an empty folder = %v, want a hint to run riff keygen", err)
	}
	os.WriteFile(filepath.Join(empty, SigningKeyFile), []byte("junk"), 0o600)
	if _, err := LoadKeyDir(empty); err == nil || !strings.Contains(err.Error(), "PEM") {
		t.Errorf("LoadKeyDir with a junk signing key = %v, want a PEM error", err)
	}
	if _, err := GenerateKey(dir, "bad kid", now); err == nil {
		t.Error("GenerateKey with kid 'bad kid': no error")
	}
}
