package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// refreshLen is the length of a refresh token: 32 random bytes in
// unpadded base64url.
const refreshLen = (32*8 + 5) / 6

// NewRefreshToken returns a fresh opaque refresh token (32 random bytes,
// base64url) and the SHA-256 hash that is stored in its place. A
// database leak then yields no usable token; a plain hash suffices because
// the token has 256 bits of entropy (no dictionary to run).
func NewRefreshToken() (token string, hash []byte, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	token = base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(token))
	return token, h[:], nil
}

// HashRefreshToken returns the stored hash of token, or false when token
// cannot be one of ours (wrong length or alphabet), which saves a
// database lookup.
func HashRefreshToken(token string) ([]byte, bool) {
	if len(token) != refreshLen {
		return nil, false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(token); err != nil {
		return nil, false
	}
	h := sha256.Sum256([]byte(token))
	return h[:], true
}
