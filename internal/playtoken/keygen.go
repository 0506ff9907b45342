package playtoken

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"riff/internal/config"
)

// Key file names inside the keygen directory.
const (
	SigningKeyFile = "signing.key"
	JWKSFile       = "jwks.json"
)

// RunKeygen implements `riff keygen -dir DIR [-kid ID]`: it makes a new
// Ed25519 key pair, adds the public key to DIR/jwks.json (creating it;
// keys already there stay, so tokens they signed keep verifying), writes the
// private key to DIR/signing.key (mode 0600, replacing the previous one) and
// prints the new kid. The default kid is the UTC date and the start of the
// key's RFC 7638 thumbprint, e.g. "2026-03-01-kX1Jd0mT".
//
// jwks.json is written before signing.key, each atomically (temporary file,
// then rename), so a crash never leaves a signing key whose public half is
// unpublished.
func RunKeygen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`folder` for signing.key and jwks.json (required)")
	kid := fs.String("kid", "", "key `id` (default: date and thumbprint prefix)")
	if err := config.Load(fs, args, getenv, "keygen"); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("keygen: -dir is required")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if *kid == "" {
		*kid = time.Now().UTC().Format("2006-01-02") + "-" + Thumbprint(pub)[:8]
	}
	if err := validKID(*kid); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	keyPEM, err := MarshalSigningKey(*kid, priv)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	jwksPath := filepath.Join(*dir, JWKSFile)
	set, err := addToJWKS(jwksPath, *kid, pub)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeFileAtomic(jwksPath, set, 0o644); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(*dir, SigningKeyFile), keyPEM, 0o600); err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	_, err = fmt.Fprintln(stdout, *kid)
	return err
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
