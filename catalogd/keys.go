package catalogd

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"riff/catalogd/auth"
	"riff/internal/playtoken"
)

// Keys are catalogd's signing keys.
type Keys struct {
	Playback    *playtoken.Signer // mints playback tokens
	PlaybackKID string
	AccessKID   string
	AccessKey   ed25519.PrivateKey // signs access tokens (see auth.DeriveAccessKey)
	Public      *playtoken.KeySet  // playback public keys plus the access-token key
}

// LoadKeys reads DIR/signing.key (and DIR/jwks.json, when present, for the
// published playback keys) as written by `riff keygen -dir DIR`. With dir
// "" it makes an ephemeral key and logs a warning: fine for development,
// but playback URLs then verify only at edges given this process's key,
// and every token dies with the process.
func LoadKeys(dir string, now func() time.Time, log *slog.Logger) (Keys, error) {
	var k Keys
	var signing ed25519.PrivateKey
	var public *playtoken.KeySet
	if dir == "" {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return k, fmt.Errorf("catalogd: %w", err)
		}
		signing = key
		k.PlaybackKID = "ephemeral-" + playtoken.Thumbprint(key.Public().(ed25519.PublicKey))[:8]
		log.Warn("no -keys folder: using an ephemeral signing key; tokens will not survive a restart and edges must be given this key (run `riff keygen -dir DIR` and pass -keys DIR)",
			"kid", k.PlaybackKID)
	} else {
		kd, err := playtoken.LoadKeyDir(dir)
		if err != nil {
			return k, fmt.Errorf("catalogd: %w", err)
		}
		k.PlaybackKID, signing, public = kd.KID, kd.Key, kd.Public
	}
	k.Playback = playtoken.NewSigner(k.PlaybackKID, signing, now)
	if public == nil {
		public = k.Playback.KeySet()
	}
	if _, ok := public.Key(k.PlaybackKID); !ok {
		log.Warn("signing key is not in jwks.json: edges loading that file will refuse its tokens", "kid", k.PlaybackKID)
		if p, err := public.With(k.PlaybackKID, k.Playback.Public()); err == nil {
			public = p
		}
	}
	k.AccessKey = auth.DeriveAccessKey(signing)
	k.AccessKID = "access-" + playtoken.Thumbprint(k.AccessKey.Public().(ed25519.PublicKey))[:12]
	var err error
	if k.Public, err = public.With(k.AccessKID, k.AccessKey.Public().(ed25519.PublicKey)); err != nil {
		return k, fmt.Errorf("catalogd: %w", err)
	}
	return k, nil
}
