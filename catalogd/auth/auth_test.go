package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"riff/internal/playtoken"
)

// testParams are cheap argon2 parameters for tests.
var testParams = Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1}

func TestPasswords(t *testing.T) {
	ctx := context.Background()
	p, err := NewPasswords(testParams, 2)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("Hash = %q, want a PHC argon2id string", h)
	}
	if h2, _ := p.Hash(ctx, "correct horse"); h2 == h {
		t.Error("two hashes of one password are equal: salt missing")
	}
	for _, tc := range []struct {
		pw, hash       string
		ok, rehash     bool
		malformedError bool
	}{
		{"correct horse", h, true, false, false},
		{"correct horsE", h, false, false, false},
		{"", h, false, false, false},
		{"correct horse", "!", false, false, true},
		{"correct horse", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", false, false, true},
		{"correct horse", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", false, false, true},
		{"correct horse", "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$!!", false, false, true},
	} {
		ok, rehash, err := p.Verify(ctx, tc.pw, tc.hash)
		if ok != tc.ok || rehash != tc.rehash || (err != nil) != tc.malformedError {
			t.Errorf("Verify(%q, %q) = %v, %v, %v; want %v, %v, malformed=%v", tc.pw, tc.hash, ok, rehash, err, tc.ok, tc.rehash, tc.malformedError)
		}
	}
	// A hash made with other parameters verifies and asks for a rehash.
	stronger, _ := NewPasswords(Argon2Params{MemoryKiB: 128, Time: 2, Threads: 1}, 1)
	if ok, rehash, err := stronger.Verify(ctx, "correct horse", h); !ok || !rehash || err != nil {
		t.Errorf("Verify with new params = %v, %v, %v; want ok and rehash", ok, rehash, err)
	}
	if p.VerifyDummy(ctx, "x") {
		t.Error("VerifyDummy returned true")
	}
	if _, err := NewPasswords(Argon2Params{MemoryKiB: 1, Time: 0, Threads: 1}, 1); err == nil {
		t.Error("NewPasswords accepted t=0")
	}
}

func TestPasswordsWaitRespectsContext(t *testing.T) {
	p, _ := NewPasswords(testParams, 1)
	p.sem <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.Hash(ctx, "pw"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Hash with no free slot = %v, want deadline exceeded", err)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTokens(t testing.TB) (*AccessTokens, *clock, ed25519.PrivateKey) {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	c := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	return NewAccessTokens("at-1", DeriveAccessKey(key), 15*time.Minute, c.now), c, key
}

// forge signs arbitrary header and claims with key (nil: unsigned).
func forge(t *testing.T, header, claims map[string]any, sign func(string) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding
	s := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign(s)
	}
	return s + "." + enc.EncodeToString(sig)
}

func TestAccessTokens(t *testing.T) {
	at, c, playKey := newTokens(t)
	tok, exp, err := at.Issue(AccessClaims{UserID: 42, SessionID: 7, Tier: "premium", Role: "listener"})
	if err != nil {
		t.Fatal(err)
	}
	if want := c.t.Add(15 * time.Minute); !exp.Equal(want) {
		t.Errorf("expiry %v, want %v", exp, want)
	}
	got, err := at.Verify(tok)
	if err != nil || got.UserID != 42 || got.SessionID != 7 || got.Tier != "premium" || got.Role != "listener" {
		t.Fatalf("Verify = %+v, %v", got, err)
	}

	accessKey := DeriveAccessKey(playKey)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	now := c.t.Unix()
	good := map[string]any{"iss": Issuer, "aud": []string{Audience}, "sub": "42", "iat": now, "exp": now + 600, "typ": "access"}
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for kk, vv := range good {
			m[kk] = vv
		}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	hdr := map[string]any{"alg": "EdDSA", "typ": TokenType, "kid": "at-1"}
	ed := func(key ed25519.PrivateKey) func(string) []byte {
		return func(s string) []byte { return ed25519.Sign(key, []byte(s)) }
	}
	hs256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(good)).SignedString([]byte(accessKey.Public().(ed25519.PublicKey)))
	playSigner := playtoken.NewSigner("at-1", playKey, c.now)
	playTok, _ := playSigner.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "42", Prefix: "artists/1/", MaxKbps: 320}, time.Minute)

	for _, tc := range []struct {
		name    string
		token   string
		wantErr error
	}{
		{"forged with the same claims", forge(t, hdr, good, ed(accessKey)), nil},
		{"wrong key", forge(t, hdr, good, ed(otherKey)), ErrTokenInvalid},
		{"playback key", forge(t, hdr, good, ed(playKey)), ErrTokenInvalid},
		{"alg none", forge(t, map[string]any{"alg": "none", "typ": TokenType, "kid": "at-1"}, good, nil), ErrTokenInvalid},
		{"HS256 with public key as secret", hs256, ErrTokenInvalid},
		{"expired", forge(t, hdr, with("exp", now-60), ed(accessKey)), ErrTokenExpired},
		{"no exp", forge(t, hdr, with("exp", nil), ed(accessKey)), ErrTokenInvalid},
		{"issued in the future", forge(t, hdr, with("iat", now+3600), ed(accessKey)), ErrTokenInvalid},
		{"wrong issuer", forge(t, hdr, with("iss", "evil"), ed(accessKey)), ErrTokenInvalid},
		{"wrong audience", forge(t, hdr, with("aud", []string{"riff-edge"}), ed(accessKey)), ErrTokenInvalid},
		{"play typ claim", forge(t, hdr, with("typ", "play"), ed(accessKey)), ErrTokenInvalid},
		{"bad subject", forge(t, hdr, with("sub", "alice"), ed(accessKey)), ErrTokenInvalid},
		{"no header typ", forge(t, map[string]any{"alg": "EdDSA", "kid": "at-1"}, good, ed(accessKey)), ErrTokenInvalid},
		{"unknown kid", forge(t, map[string]any{"alg": "EdDSA", "typ": TokenType, "kid": "x"}, good, ed(accessKey)), ErrTokenInvalid},
		{"playback token", playTok, ErrTokenInvalid},
		{"garbage", "not.a.jwt", ErrTokenInvalid},
		{"empty", "", ErrTokenInvalid},
		{"huge", strings.Repeat("a", MaxTokenLen+1), ErrTokenInvalid},
		{"tampered", tok[:len(tok)-4] + "AAAA", ErrTokenInvalid},
	} {
		_, err := at.Verify(tc.token)
		if (tc.wantErr == nil && err != nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	c.t = c.t.Add(16 * time.Minute)
	if _, err := at.Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Verify after 16 min = %v, want ErrTokenExpired", err)
	}
}

func TestDeriveAccessKeyIsStableAndDistinct(t *testing.T) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	a, b := DeriveAccessKey(k), DeriveAccessKey(k)
	if !a.Equal(b) {
		t.Error("derivation is not deterministic")
	}
	if a.Equal(k) {
		t.Error("access key equals the playback key")
	}
}

func TestRefreshTokens(t *testing.T) {
	tok, hash, err := NewRefreshToken()
	if err != nil || len(tok) != 43 || len(hash) != 32 {
		t.Fatalf("NewRefreshToken = %q, %x, %v", tok, hash, err)
	}
	h, ok := HashRefreshToken(tok)
	if !ok || string(h) != string(hash) {
		t.Errorf("HashRefreshToken(token) = %x, %v; want %x", h, ok, hash)
	}
	tok2, _, _ := NewRefreshToken()
	if tok2 == tok {
		t.Error("two refresh tokens are equal")
	}
	for _, bad := range []string{"", "short", tok + "A", strings.Repeat("!", 43), tok[:42] + "="} {
		if _, ok := HashRefreshToken(bad); ok {
			t.Errorf("HashRefreshToken(%q) accepted", bad)
		}
	}
}
