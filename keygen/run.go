// Package keygen is `riff keygen`: it reads its flags and asks
// internal/playtoken for a new signing key and public key set. It holds the
// command only (flags, messages); the key files and their format belong to
// playtoken. It must not import the daemons (catalogd, edge, origin).
package keygen

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"riff/internal/config"
	"riff/internal/playtoken"
)

// Run implements `riff keygen -dir DIR [-kid ID]`: it makes a new Ed25519
// key pair, adds the public key to DIR/jwks.json (creating it; keys already
// there stay, so tokens they signed keep verifying), writes the private key
// to DIR/signing.key (mode 0600, replacing the previous one) and prints the
// new kid. The default kid is the UTC date and the start of the key's RFC
// 7638 thumbprint, e.g. "2026-03-01-kX1Jd0mT". See playtoken.GenerateKey.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	kid, err := playtoken.GenerateKey(cfg.dir, cfg.kid, time.Now)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	_, err = fmt.Fprintln(stdout, kid)
	return err
}

// runConfig is what Run's flags say, checked.
type runConfig struct {
	dir string
	kid string // "": date and thumbprint prefix
}

// parseFlags reads and checks Run's flags (and RIFF_KEYGEN_* and a -config
// file); it touches no file.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (runConfig, error) {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`folder` for signing.key and jwks.json (required)")
	kid := fs.String("kid", "", "key `id` (default: date and thumbprint prefix)")
	if err := config.Load(fs, args, getenv, "keygen"); err != nil {
		return runConfig{}, err
	}
	if *dir == "" {
		return runConfig{}, errors.New("keygen: -dir is required")
	}
	if *kid != "" {
		if err := playtoken.ValidateKID(*kid); err != nil {
			return runConfig{}, fmt.Errorf("keygen: %w", err)
		}
	}
	return runConfig{dir: *dir, kid: *kid}, nil
}
