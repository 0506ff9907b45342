package playtoken

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Key file names inside the keygen directory.
const (
	SigningKeyFile = "signing.key"
	JWKSFile       = "jwks.json"
)

// GenerateKey makes a new Ed25519 key pair in dir, as `riff keygen -dir DIR
// [-kid ID]` does, and returns its kid: it adds the public key to
// dir/jwks.json (creating dir and the file; keys already there stay, so
// tokens they signed keep verifying) and writes the private key to
// dir/signing.key (mode 0600, replacing the previous one). kid "" means the
// UTC date of now() and the start of the key's RFC 7638 thumbprint, e.g.
// "2026-03-01-kX1Jd0mT"; a kid already in jwks.json is refused and leaves
// the files alone.
//
// jwks.json is written before signing.key, each atomically (temporary file,
// then rename), so a crash never leaves a signing key whose public half is
// unpublished. Errors carry no "playtoken:" prefix; the caller names the
// command.
func GenerateKey(dir, kid string, now func() time.Time) (string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	if kid == "" {
		kid = now().UTC().Format("2006-01-02") + "-" + Thumbprint(pub)[:8]
	}
	if err := validKID(kid); err != nil {
		return "", err
	}
	keyPEM, err := MarshalSigningKey(kid, priv)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	jwksPath := filepath.Join(dir, JWKSFile)
	set, err := addToJWKS(jwksPath, kid, pub)
	if err != nil {
		return "", err
	}
	if err := writeFileAtomic(jwksPath, set, 0o644); err != nil {
		return "", err
	}
	if err := writeFileAtomic(filepath.Join(dir, SigningKeyFile), keyPEM, 0o600); err != nil {
		return "", err
	}
	return kid, nil
}

// addToJWKS returns the JWK Set at path (or a new one) with pub appended
// under kid. Entries already in the file are kept verbatim, including keys
// of types this package does not use.
func addToJWKS(path, kid string, pub ed25519.PublicKey) ([]byte, error) {
	var set jwks
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, &set); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ks, err := ParseKeySet(data); err == nil && slices.Contains(ks.KIDs(), kid) {
			return nil, fmt.Errorf("%s already has kid %q", path, kid)
		}
	}
	k, err := json.Marshal(publicJWK(kid, pub))
	if err != nil {
		return nil, err
	}
	set.Keys = append(set.Keys, k)
	out, err := json.MarshalIndent(set, "", "  ")
	if err != nil {
		return nil, err
	}
	out = append(out, '\n')
	if _, err := ParseKeySet(out); err != nil { // never write a set we cannot read
		return nil, err
	}
	return out, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// folder, synced and renamed into place.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
