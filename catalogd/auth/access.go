package auth

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Access-token constants: every token catalogd issues says these, and
// Verify insists on them.
const (
	Issuer   = "riff-catalogd"
	Audience = "riff-api"
	// TokenType is the JWT header typ of access tokens (RFC 9068).
	TokenType = "at+jwt"
	// claimType is the typ claim, which also keeps access tokens apart from
	// playback ("play") and purge tokens.
	claimType = "access"
	// MaxTokenLen bounds the tokens Verify will parse.
	MaxTokenLen = 4096
)

// Access-token errors.
var (
	ErrTokenExpired = errors.New("auth: access token expired")
	ErrTokenInvalid = errors.New("auth: access token invalid")
)

// AccessClaims is what an access token says about its holder.
type AccessClaims struct {
	UserID    int64
	SessionID int64  // the refresh-token family the token was issued in
	Tier      string // subscription tier at issue time
	Role      string // role at issue time
	Expires   time.Time
}

type wireAccess struct {
	jwt.RegisteredClaims
	Type string `json:"typ"`
	Tier string `json:"tier"`
	Role string `json:"role"`
	SID  int64  `json:"sid"`
}

// AccessTokens issues and verifies access tokens: JWTs signed with Ed25519
// (alg EdDSA), the key named by kid in the header, issuer, audience and
// type pinned on verification, "none", HS* and every other algorithm
// refused. It is safe for concurrent use.
type AccessTokens struct {
	kid    string
	key    ed25519.PrivateKey
	pubs   map[string]ed25519.PublicKey
	ttl    time.Duration
	now    func() time.Time
	parser *jwt.Parser
	cache  TokenCache[string, AccessClaims]
}

// NewAccessTokens returns AccessTokens that sign with key (named kid) and
// issue tokens valid for ttl by the clock now (nil: time.Now).
func NewAccessTokens(kid string, key ed25519.PrivateKey, ttl time.Duration, now func() time.Time) *AccessTokens {
	if now == nil {
		now = time.Now
	}
	return &AccessTokens{
		kid: kid, key: key, ttl: ttl, now: now,
		pubs: map[string]ed25519.PublicKey{kid: key.Public().(ed25519.PublicKey)},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(Issuer),
			jwt.WithAudience(Audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(5*time.Second),
			jwt.WithTimeFunc(now),
			jwt.WithStrictDecoding(),
		),
	}
}

// DeriveAccessKey derives the access-token signing key from the playback
// signing key: HMAC-SHA256 of a fixed label keyed with the seed. Every
// catalogd holding the same signing.key derives the same access key, the
// key differs from the playback key (an access token can never verify as
// a playback token or the other way round), and it rotates with it.
func DeriveAccessKey(signing ed25519.PrivateKey) ed25519.PrivateKey {
	mac := hmac.New(sha256.New, signing.Seed())
	mac.Write([]byte("riff catalogd access-token signing key v1"))
	return ed25519.NewKeyFromSeed(mac.Sum(nil))
}

// KID returns the key id in the header of issued tokens.
func (a *AccessTokens) KID() string { return a.kid }

// Public returns the public key that verifies issued tokens.
func (a *AccessTokens) Public() ed25519.PublicKey { return a.pubs[a.kid] }

// TTL is how long issued tokens are valid.
func (a *AccessTokens) TTL() time.Duration { return a.ttl }

// Issue signs a token for c (Expires is set from the clock and TTL) and
// returns it with its expiry.
func (a *AccessTokens) Issue(c AccessClaims) (string, time.Time, error) {
	now := a.now()
	exp := now.Add(a.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, wireAccess{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   strconv.FormatInt(c.UserID, 10),
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
		Type: claimType, Tier: c.Tier, Role: c.Role, SID: c.SessionID,
	})
	tok.Header["kid"] = a.kid
	tok.Header["typ"] = TokenType
	s, err := tok.SignedString(a.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign access token: %w", err)
	}
	return s, exp.Truncate(time.Second), nil
}

// Verify checks token and returns its claims. The error wraps
// ErrTokenExpired for an expired (otherwise valid) token and ErrTokenInvalid
// for everything else.
//
// A client sends the same token with every request for its 15 minutes, so
// tokens that verified are remembered (keyed by the whole token string,
// until they expire): a repeat costs a map lookup instead of an Ed25519
// verification. Failures are not remembered.
func (a *AccessTokens) Verify(token string) (AccessClaims, error) {
	if len(token) > MaxTokenLen {
		return AccessClaims{}, fmt.Errorf("%w: longer than %d bytes", ErrTokenInvalid, MaxTokenLen)
	}
	now := a.now()
	if c, ok := a.cache.Get(token); ok {
		if now.Before(c.Expires.Add(5 * time.Second)) { // the parser's leeway
			return c, nil
		}
		return AccessClaims{}, fmt.Errorf("%w: expired at %v", ErrTokenExpired, c.Expires)
	}
	c, err := a.verify(token)
	if err == nil {
		a.cache.Put(token, c)
	}
	return c, err
}

func (a *AccessTokens) verify(token string) (AccessClaims, error) {
	var w wireAccess
	_, err := a.parser.ParseWithClaims(token, &w, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != TokenType {
			return nil, fmt.Errorf("header typ %q, want %q", typ, TokenType)
		}
		kid, _ := t.Header["kid"].(string)
		pub, ok := a.pubs[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return pub, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return AccessClaims{}, fmt.Errorf("%w: %v", ErrTokenExpired, err)
	case err != nil:
		return AccessClaims{}, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	case w.Type != claimType:
		return AccessClaims{}, fmt.Errorf("%w: typ claim %q, want %q", ErrTokenInvalid, w.Type, claimType)
	}
	uid, err := strconv.ParseInt(w.Subject, 10, 64)
	if err != nil || uid <= 0 {
		return AccessClaims{}, fmt.Errorf("%w: subject %q", ErrTokenInvalid, w.Subject)
	}
	return AccessClaims{UserID: uid, SessionID: w.SID, Tier: w.Tier, Role: w.Role, Expires: w.ExpiresAt.Time}, nil
}
