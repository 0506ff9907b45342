package playtoken

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Type says what a token is for.
type Type string

// The token types.
const (
	TypePlay  Type = "play"  // lets a listener fetch objects under Prefix
	TypePurge Type = "purge" // lets catalogd purge an edge's cache under Prefix
)

func (t Type) valid() bool { return t == TypePlay || t == TypePurge }

// Claims is what a token says.
type Claims struct {
	Type    Type
	Subject string // the user, or for purge tokens the service that purges
	// Prefix is the blob-key prefix the token opens, e.g. one song's folder
	// "artists/1/albums/2/songs/3/". See Allows.
	Prefix    string
	MaxKbps   int       // highest bitrate the listener may play; 0 means no cap
	IssuedAt  time.Time // set by Mint
	NotBefore time.Time // zero: valid from the start
	Expires   time.Time // set by Mint from its ttl
}

// Allows reports whether the token opens key: key starts with Prefix on a
// path-segment boundary. A Prefix of "artists/1/albums/2/songs/3/" or
// "artists/1/albums/2/songs/3" opens "artists/1/albums/2/songs/3/v1/x.mp4"
// but not "artists/1/albums/2/songs/33/v1/x.mp4". An empty Prefix opens
// nothing.
//
// key is a decoded blob key. As defence in depth Allows refuses keys whose
// part below the prefix has empty, "." or ".." segments, but callers must
// still validate keys with blob.ValidateKey.
func (c Claims) Allows(key string) bool {
	p := c.Prefix
	if p == "" || !strings.HasPrefix(key, p) {
		return false
	}
	rest := key[len(p):]
	if p[len(p)-1] != '/' {
		if rest == "" {
			return true
		}
		if rest[0] != '/' {
			return false
		}
		rest = rest[1:]
	}
	if rest == "" {
		return true
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// wireClaims is the JSON form of Claims.
type wireClaims struct {
	jwt.RegisteredClaims
	Type    Type   `json:"typ,omitempty"`
	Prefix  string `json:"pfx,omitempty"`
	MaxKbps int    `json:"mbr,omitempty"`
}

// Signer mints tokens with one private key. It is safe for concurrent use.
type Signer struct {
	kid string
	key ed25519.PrivateKey
	now func() time.Time
}

// NewSigner returns a Signer that signs with key and names it kid in the
// token header. now is the clock used for iat and exp; nil means time.Now.
func NewSigner(kid string, key ed25519.PrivateKey, now func() time.Time) *Signer {
	if now == nil {
		now = time.Now
	}
	return &Signer{kid: kid, key: key, now: now}
}

// KID returns the key id the Signer puts in token headers.
func (s *Signer) KID() string { return s.kid }

// Public returns the public half of the signing key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// KeySet returns a KeySet holding just the Signer's public key: what a
// verifier in the same process (tests, `riff dev`) needs.
func (s *Signer) KeySet() *KeySet {
	pub := s.Public()
	return &KeySet{keys: map[string]ed25519.PublicKey{s.kid: pub}, kids: []string{s.kid}}
}

// Mint signs a token carrying c that expires ttl from now. It sets IssuedAt
// and Expires from the Signer's clock (times have one-second precision and
// are truncated); NotBefore is kept if set. Type, Subject and Prefix are
// required.
func (s *Signer) Mint(c Claims, ttl time.Duration) (string, error) {
	switch {
	case !c.Type.valid():
		return "", fmt.Errorf("playtoken: mint: unknown type %q", c.Type)
	case c.Subject == "":
		return "", errors.New("playtoken: mint: empty subject")
	case c.Prefix == "":
		return "", errors.New("playtoken: mint: empty prefix")
	case c.MaxKbps < 0:
		return "", fmt.Errorf("playtoken: mint: negative max bitrate %d", c.MaxKbps)
	case ttl < time.Second:
		return "", fmt.Errorf("playtoken: mint: ttl %v is shorter than a second", ttl)
	}
	now := s.now()
	wc := wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Type:    c.Type,
		Prefix:  c.Prefix,
		MaxKbps: c.MaxKbps,
	}
	if !c.NotBefore.IsZero() {
		wc.NotBefore = jwt.NewNumericDate(c.NotBefore)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, wc)
	tok.Header["kid"] = s.kid
	signed, err := tok.SignedString(s.key)
	if err != nil {
		return "", fmt.Errorf("playtoken: mint: %w", err)
	}
	return signed, nil
}
