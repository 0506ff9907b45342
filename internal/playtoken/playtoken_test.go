package playtoken

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.set(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

const songPrefix = "artists/1/albums/2/songs/3/"

func playClaims() Claims {
	return Claims{Type: TypePlay, Subject: "user-42", Prefix: songPrefix, MaxKbps: 128}
}

func mint(t testing.TB, s *Signer, c Claims, ttl time.Duration) []byte {
	t.Helper()
	tok, err := s.Mint(c, ttl)
	if err != nil {
		t.Fatalf("Mint(%+v): %v", c, err)
	}
	return []byte(tok)
}

// signRaw signs arbitrary claims and header fields with key using method,
// for forging tokens Mint refuses to make.
func signRaw(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) []byte {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// unsignedToken builds header.claims.sig from JSON texts without signing.
func unsignedToken(header, claims, sig string) []byte {
	enc := base64.RawURLEncoding.EncodeToString
	return []byte(enc([]byte(header)) + "." + enc([]byte(claims)) + "." + sig)
}

func TestMintVerifyRoundTrip(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now})
	c := playClaims()
	c.NotBefore = clk.now().Add(-time.Minute)
	tok := mint(t, s, c, 10*time.Minute)

	got, err := v.Verify(tok, TypePlay)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := c
	want.IssuedAt = clk.now()
	want.Expires = clk.now().Add(10 * time.Minute)
	if got != want {
		t.Errorf("Verify = %+v, want %+v", got, want)
	}
	// The header names the key and the algorithm.
	hdr, _, _ := bytes.Cut(tok, []byte("."))
	raw, _ := base64.RawURLEncoding.DecodeString(string(hdr))
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil || h["alg"] != "EdDSA" || h["kid"] != "k1" {
		t.Errorf("header = %s, want alg EdDSA and kid k1", raw)
	}
}

func TestMintRefusesIncompleteClaims(t *testing.T) {
	s := NewSigner("k1", newKey(t), nil)
	for _, tt := range []struct {
		name string
		edit func(*Claims)
		ttl  time.Duration
	}{
		{"no type", func(c *Claims) { c.Type = "" }, time.Minute},
		{"bad type", func(c *Claims) { c.Type = "admin" }, time.Minute},
		{"no subject", func(c *Claims) { c.Subject = "" }, time.Minute},
		{"no prefix", func(c *Claims) { c.Prefix = "" }, time.Minute},
		{"negative mbr", func(c *Claims) { c.MaxKbps = -1 }, time.Minute},
		{"zero ttl", func(*Claims) {}, 0},
	} {
		c := playClaims()
		tt.edit(&c)
		if tok, err := s.Mint(c, tt.ttl); err == nil {
			t.Errorf("%s: Mint = %q, want an error", tt.name, tok)
		}
	}
}

func TestVerifyRefusals(t *testing.T) {
	clk := newClock()
	key := newKey(t)
	s := NewSigner("k1", key, clk.now)
	other := NewSigner("k9", newKey(t), clk.now)
	pub := key.Public().(ed25519.PublicKey)
	now := clk.now().Unix()
	good := jwt.MapClaims{"typ": "play", "sub": "u", "pfx": songPrefix, "exp": now + 60}
	without := func(k string) jwt.MapClaims {
		c := jwt.MapClaims{}
		for kk, vv := range good {
			if kk != k {
				c[kk] = vv
			}
		}
		return c
	}
	with := func(k string, v any) jwt.MapClaims {
		c := without(k)
		c[k] = v
		return c
	}
	valid := mint(t, s, playClaims(), time.Minute)
	parts := strings.Split(string(valid), ".")

	// Tampered payload: same header and signature, another prefix.
	forged, _ := json.Marshal(map[string]any{"typ": "play", "sub": "user-42", "pfx": "artists/", "exp": now + 60})
	tamperedPayload := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
	// Tampered signature: flip bits in the middle of it.
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	sig[10] ^= 0x55
	tamperedSig := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)

	tests := []struct {
		name  string
		token []byte
		want  Type
		pre   time.Duration // clock offset when verifying
		rsn   Reason
	}{
		{"empty", nil, TypePlay, 0, ReasonMalformed},
		{"garbage", []byte("garbage"), TypePlay, 0, ReasonMalformed},
		{"three dots", []byte("a.b.c"), TypePlay, 0, ReasonMalformed},
		{"four parts", append(append([]byte{}, valid...), ".x"...), TypePlay, 0, ReasonMalformed},
		{"binary", []byte{0xff, 0, '.', 1, '.', 2}, TypePlay, 0, ReasonMalformed},
		{"too long", bytes.Repeat([]byte("a"), MaxTokenLen+1), TypePlay, 0, ReasonMalformed},
		{"padded base64", []byte(parts[0] + "=." + parts[1] + "." + parts[2]), TypePlay, 0, ReasonMalformed},
		{"bad claim type", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1"}, with("exp", "soon")), TypePlay, 0, ReasonMalformed},
		{"crit header", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1", "crit": []string{"x"}}, good), TypePlay, 0, ReasonMalformed},

		{"alg none", unsignedToken(`{"alg":"none","typ":"JWT","kid":"k1"}`, string(mustJSON(good)), ""), TypePlay, 0, ReasonBadAlg},
		{"alg missing", unsignedToken(`{"typ":"JWT","kid":"k1"}`, string(mustJSON(good)), parts[2]), TypePlay, 0, ReasonBadAlg},
		{"alg unknown", unsignedToken(`{"alg":"XX512","kid":"k1"}`, string(mustJSON(good)), parts[2]), TypePlay, 0, ReasonBadAlg},
		{"HS256 with public key", signRaw(t, jwt.SigningMethodHS256, []byte(pub), map[string]any{"kid": "k1"}, good), TypePlay, 0, ReasonBadAlg},
		{"HS256 with public JWK x", signRaw(t, jwt.SigningMethodHS256, []byte(base64.RawURLEncoding.EncodeToString(pub)), map[string]any{"kid": "k1"}, good), TypePlay, 0, ReasonBadAlg},

		{"unknown kid", mint(t, other, playClaims(), time.Minute), TypePlay, 0, ReasonUnknownKID},
		{"no kid", signRaw(t, jwt.SigningMethodEdDSA, key, nil, good), TypePlay, 0, ReasonUnknownKID},
		{"numeric kid", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": 1}, good), TypePlay, 0, ReasonUnknownKID},
		{"right kid, other key", signRaw(t, jwt.SigningMethodEdDSA, newKey(t), map[string]any{"kid": "k1"}, good), TypePlay, 0, ReasonBadSignature},

		{"tampered payload", []byte(tamperedPayload), TypePlay, 0, ReasonBadSignature},
		{"tampered signature", []byte(tamperedSig), TypePlay, 0, ReasonBadSignature},
		{"no signature", []byte(parts[0] + "." + parts[1] + "."), TypePlay, 0, ReasonBadSignature},

		{"expired", valid, TypePlay, time.Minute + 5*time.Second, ReasonExpired},
		{"expired long ago", valid, TypePlay, 24 * time.Hour, ReasonExpired},
		{"not yet valid", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1"}, with("nbf", now+30)), TypePlay, 0, ReasonNotYetValid},

		{"purge used for play", mint(t, s, Claims{Type: TypePurge, Subject: "catalogd", Prefix: "artists/1/"}, time.Minute), TypePlay, 0, ReasonWrongType},
		{"play used for purge", valid, TypePurge, 0, ReasonWrongType},
		{"unknown typ", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1"}, with("typ", "admin")), TypePlay, 0, ReasonWrongType},

		{"no exp", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1"}, without("exp")), TypePlay, 0, ReasonMissingClaim},
		{"no typ", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1"}, without("typ")), TypePlay, 0, ReasonMissingClaim},
		{"no pfx", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1"}, without("pfx")), TypePlay, 0, ReasonMissingClaim},
		{"no sub", signRaw(t, jwt.SigningMethodEdDSA, key, map[string]any{"kid": "k1"}, without("sub")), TypePlay, 0, ReasonMissingClaim},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.set(time.Unix(now, 0))
			clk.advance(tt.pre)
			// A fresh verifier each time, so that no case is answered
			// from another's cache entry.
			v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now})
			c, err := v.Verify(tt.token, tt.want)
			if got := ReasonOf(err); got != tt.rsn {
				t.Fatalf("Verify = %+v, %v; ReasonOf = %q, want %q", c, err, got, tt.rsn)
			}
			var e *Error
			if !errors.As(err, &e) || c != (Claims{}) {
				t.Errorf("Verify err = %T, claims %+v; want *Error and zero claims", err, c)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func TestLeeway(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now, Leeway: 5 * time.Second, CacheSize: -1})
	c := playClaims()
	c.NotBefore = clk.now().Add(4 * time.Second)
	tok := mint(t, s, c, time.Minute)
	if _, err := v.Verify(tok, TypePlay); err != nil {
		t.Errorf("nbf 4s ahead with 5s leeway: %v", err)
	}
	clk.advance(time.Minute + 4*time.Second)
	if _, err := v.Verify(tok, TypePlay); err != nil {
		t.Errorf("4s past exp with 5s leeway: %v", err)
	}
	clk.advance(time.Second)
	if _, err := v.Verify(tok, TypePlay); ReasonOf(err) != ReasonExpired {
		t.Errorf("5s past exp with 5s leeway: %v, want expired", err)
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		prefix, key string
		want        bool
	}{
		{songPrefix, songPrefix + "v1/master.m3u8", true},
		{songPrefix, songPrefix + "v12/aac_128.mp4", true},
		{"artists/1/albums/2/songs/3", songPrefix + "v1/master.m3u8", true},
		{"artists/1/albums/2/songs/3", "artists/1/albums/2/songs/3", true},
		{songPrefix, "artists/1/albums/2/songs/33/v1/master.m3u8", false},
		{"artists/1/albums/2/songs/3", "artists/1/albums/2/songs/33/v1/master.m3u8", false},
		{"artists/1/albums/2/songs/3", "artists/1/albums/2/songs/3x", false},
		{songPrefix, "artists/1/albums/2/songs/4/v1/master.m3u8", false},
		{songPrefix, "artists/1/albums/2/songs/", false},
		{songPrefix, "originals/3/x.wav", false},
		{songPrefix, "", false},
		{"", songPrefix + "v1/master.m3u8", false},
		{songPrefix, songPrefix + "../4/v1/master.m3u8", false},
		{songPrefix, songPrefix + "v1/../../4/x", false},
		{songPrefix, songPrefix + "./v1/x", false},
		{songPrefix, songPrefix + "v1//x", false},
		{"artists/1/albums/2/songs/3", "artists/1/albums/2/songs/3/../4/x", false},
		{"artists/1/", "artists/1/albums/2/songs/3/v1/x", true},
	}
	for _, tt := range tests {
		c := Claims{Prefix: tt.prefix}
		if got := c.Allows(tt.key); got != tt.want {
			t.Errorf("Claims{Prefix: %q}.Allows(%q) = %v, want %v", tt.prefix, tt.key, got, tt.want)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	clk := newClock()
	old := NewSigner("2026-01", newKey(t), clk.now)
	cur := NewSigner("2026-02", newKey(t), clk.now)
	ks, err := old.KeySet().With(cur.KID(), cur.Public())
	if err != nil {
		t.Fatal(err)
	}
	// Through JSON, as edges get it.
	data, err := json.Marshal(ks)
	if err != nil {
		t.Fatal(err)
	}
	ks, err = ParseKeySet(data)
	if err != nil {
		t.Fatalf("ParseKeySet(%s): %v", data, err)
	}
	if got, want := strings.Join(ks.KIDs(), ","), "2026-01,2026-02"; got != want {
		t.Errorf("KIDs = %s, want %s", got, want)
	}
	v := NewVerifier(ks, VerifierOptions{Now: clk.now})
	oldTok, curTok := mint(t, old, playClaims(), time.Hour), mint(t, cur, playClaims(), time.Hour)
	for name, tok := range map[string][]byte{"old": oldTok, "current": curTok} {
		if _, err := v.Verify(tok, TypePlay); err != nil {
			t.Errorf("%s key's token: %v", name, err)
		}
	}
	// Retire the old key: its tokens are refused at once, even those cached.
	v.SetKeySet(ks.Without("2026-01"))
	if _, err := v.Verify(oldTok, TypePlay); ReasonOf(err) != ReasonUnknownKID {
		t.Errorf("retired key's token: %v, want unknown_kid", err)
	}
	if _, err := v.Verify(curTok, TypePlay); err != nil {
		t.Errorf("current key's token after retiring the old: %v", err)
	}
	// A verifier built from the reduced set refuses it too.
	v2 := NewVerifier(ks.Without("2026-01"), VerifierOptions{Now: clk.now})
	if _, err := v2.Verify(oldTok, TypePlay); ReasonOf(err) != ReasonUnknownKID {
		t.Errorf("new verifier, retired key's token: %v, want unknown_kid", err)
	}
}

func TestCacheSkipsSignatureCheck(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now, CacheTTL: 30 * time.Second, Leeway: 5 * time.Second})
	tok := mint(t, s, playClaims(), time.Minute)
	for range 10 {
		if _, err := v.Verify(tok, TypePlay); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.sigChecks.Load(); got != 1 {
		t.Errorf("10 verifications of one token: %d signature checks, want 1", got)
	}
	// The type is checked on every hit.
	if _, err := v.Verify(tok, TypePurge); ReasonOf(err) != ReasonWrongType {
		t.Errorf("cached play token used for purge: %v, want wrong_type", err)
	}
	// After CacheTTL the token is verified again.
	clk.advance(30 * time.Second)
	if _, err := v.Verify(tok, TypePlay); err != nil {
		t.Fatal(err)
	}
	if got := v.sigChecks.Load(); got != 2 {
		t.Errorf("after CacheTTL: %d signature checks, want 2", got)
	}
	// The entry made at +30s would live to +60s, but the token expires at
	// +60s (+5s leeway): a hit never outlives exp.
	clk.advance(29 * time.Second)
	if _, err := v.Verify(tok, TypePlay); err != nil {
		t.Fatalf("at +59s: %v", err)
	}
	clk.advance(6 * time.Second) // +65s: exp + leeway
	if _, err := v.Verify(tok, TypePlay); ReasonOf(err) != ReasonExpired {
		t.Errorf("cached token past exp: %v, want expired", err)
	}
}

func TestCacheEntryNeverOutlivesExp(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now, CacheTTL: time.Hour, Leeway: time.Second})
	tok := mint(t, s, playClaims(), 10*time.Second)
	if _, err := v.Verify(tok, TypePlay); err != nil {
		t.Fatal(err)
	}
	clk.advance(11 * time.Second)
	if _, err := v.Verify(tok, TypePlay); ReasonOf(err) != ReasonExpired {
		t.Errorf("cached with a 1h CacheTTL, 11s into a 10s token: %v, want expired", err)
	}
}

func TestCacheIsBounded(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	for _, size := range []int{2, 8, 40} {
		v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now, CacheSize: size})
		for i := range 3 * size {
			c := playClaims()
			c.Subject = fmt.Sprint("user-", i)
			if _, err := v.Verify(mint(t, s, c, time.Hour), TypePlay); err != nil {
				t.Fatal(err)
			}
		}
		if got := v.cache.len(); got > size || got == 0 {
			t.Errorf("CacheSize %d: %d entries after %d tokens", size, got, 3*size)
		}
	}
	// The sharded layout, without paying for signatures.
	for _, size := range []int{1, 1024, 5000} {
		c := newCache(size)
		for i := range 3 * size {
			c.put(fmt.Sprint("token-", i), entry{until: 1})
		}
		if got := c.len(); got > max(size, 2) || got < size/4 {
			t.Errorf("newCache(%d): %d entries after %d puts", size, got, 3*size)
		}
	}
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now, CacheSize: -1})
	tok := mint(t, s, playClaims(), time.Hour)
	v.Verify(tok, TypePlay)
	v.Verify(tok, TypePlay)
	if v.cache != nil || v.sigChecks.Load() != 2 {
		t.Errorf("CacheSize -1: cache %v, %d signature checks, want no cache and 2", v.cache, v.sigChecks.Load())
	}
}

func TestFailuresAreNotCached(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now})
	c := playClaims()
	c.NotBefore = clk.now().Add(time.Minute)
	tok := mint(t, s, c, time.Hour)
	if _, err := v.Verify(tok, TypePlay); ReasonOf(err) != ReasonNotYetValid {
		t.Fatalf("Verify = %v, want not_yet_valid", err)
	}
	clk.advance(time.Minute)
	if _, err := v.Verify(tok, TypePlay); err != nil {
		t.Errorf("once nbf has passed: %v", err)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now, CacheSize: 64})
	toks := make([][]byte, 50)
	for i := range toks {
		c := playClaims()
		c.Subject = fmt.Sprint("u", i)
		toks[i] = mint(t, s, c, time.Hour)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tok := toks[(g*7+i)%len(toks)]
				c, err := v.Verify(tok, TypePlay)
				if err != nil || !strings.HasPrefix(c.Subject, "u") {
					t.Errorf("Verify = %+v, %v", c, err)
					return
				}
				if i%50 == 0 {
					v.SetKeySet(s.KeySet())
				}
			}
		})
	}
	wg.Wait()
}

func TestCachedVerifyDoesNotAllocate(t *testing.T) {
	clk := newClock()
	s := NewSigner("k1", newKey(t), clk.now)
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now})
	tok := mint(t, s, playClaims(), time.Hour)
	if _, err := v.Verify(tok, TypePlay); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(tok, TypePlay); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("cached Verify: %v allocs, want 0", allocs)
	}
}

func TestParseKeySet(t *testing.T) {
	pub := newKey(t).Public().(ed25519.PublicKey)
	x := base64.RawURLEncoding.EncodeToString(pub)
	key := func(extra string) string {
		return `{"kty":"OKP","crv":"Ed25519","x":"` + x + `"` + extra + `}`
	}
	tests := []struct {
		name, in string
		kids     string // "" means an error is wanted
	}{
		{"one key", `{"keys":[` + key(`,"kid":"a"`) + `]}`, "a"},
		{"minimal alg use", `{"keys":[` + key(`,"kid":"a","alg":"EdDSA","use":"sig"`) + `]}`, "a"},
		{"skips other kinds", `{"keys":[{"kty":"RSA","n":"x","e":"AQAB","kid":"r"},` + key(`,"kid":"a"`) +
			`,{"kty":"OKP","crv":"X25519","x":"` + x + `","kid":"x"},` + key(`,"kid":"enc","use":"enc"`) +
			`,` + key(`,"kid":"es","alg":"ES256"`) + `]}`, "a"},
		{"two keys", `{"keys":[` + key(`,"kid":"a"`) + `,` + key(`,"kid":"b"`) + `]}`, "a,b"},
		{"not json", `keys`, ""},
		{"no keys member", `{}`, ""},
		{"empty", `{"keys":[]}`, ""},
		{"only others", `{"keys":[{"kty":"RSA","kid":"r"}]}`, ""},
		{"no kid", `{"keys":[` + key(``) + `]}`, ""},
		{"bad kid", `{"keys":[` + key(`,"kid":"a b"`) + `]}`, ""},
		{"dup kid", `{"keys":[` + key(`,"kid":"a"`) + `,` + key(`,"kid":"a"`) + `]}`, ""},
		{"short x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"a"}]}`, ""},
		{"padded x", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + base64.URLEncoding.EncodeToString(pub) + `","kid":"a"}]}`, ""},
		{"private key", `{"keys":[` + key(`,"kid":"a","d":"c2VjcmV0"`) + `]}`, ""},
	}
	for _, tt := range tests {
		ks, err := ParseKeySet([]byte(tt.in))
		switch {
		case tt.kids == "" && err == nil:
			t.Errorf("%s: ParseKeySet = %v, want an error", tt.name, ks.KIDs())
		case tt.kids != "" && err != nil:
			t.Errorf("%s: ParseKeySet: %v", tt.name, err)
		case tt.kids != "":
			if got := strings.Join(ks.KIDs(), ","); got != tt.kids {
				t.Errorf("%s: KIDs = %s, want %s", tt.name, got, tt.kids)
			}
			if k, _ := ks.Key(ks.KIDs()[0]); !bytes.Equal(k, pub) {
				t.Errorf("%s: key = %x, want %x", tt.name, k, pub)
			}
		}
	}
}

func TestSigningKeyFile(t *testing.T) {
	key := newKey(t)
	data, err := MarshalSigningKey("k-1", key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("kid: k-1\n-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("signing key file starts %q", data[:min(len(data), 60)])
	}
	kid, got, err := ParseSigningKey(data)
	if err != nil || kid != "k-1" || !got.Equal(key) {
		t.Errorf("ParseSigningKey = %q, %v; want k-1 and the key", kid, err)
	}
	// Without the kid line (e.g. straight from openssl genpkey) it is refused.
	_, pemOnly, _ := bytes.Cut(data, []byte("\n"))
	if _, _, err := ParseSigningKey(pemOnly); err == nil {
		t.Error("ParseSigningKey without a kid line: no error")
	}
	if _, _, err := ParseSigningKey([]byte("kid: a\nnot pem")); err == nil {
		t.Error("ParseSigningKey(not pem): no error")
	}
}

// FuzzVerify checks that Verify never panics and that nothing but the
// genuine token verifies, whatever is done to it.
func FuzzVerify(f *testing.F) {
	clk := newClock()
	seed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	s := NewSigner("k1", seed, clk.now)
	good, err := s.Mint(playClaims(), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now})
	parts := strings.Split(good, ".")
	f.Add([]byte(good))
	f.Add([]byte(parts[0] + "." + parts[1] + "."))
	f.Add([]byte(parts[0] + ".." + parts[2]))
	f.Add(unsignedToken(`{"alg":"none","kid":"k1"}`, `{"typ":"play","sub":"u","pfx":"a/","exp":9999999999}`, ""))
	f.Add(unsignedToken(`{"alg":"HS256","kid":"k1"}`, `{"typ":"play","sub":"u","pfx":"a/","exp":9999999999}`, "AAAA"))
	f.Add([]byte("a.b.c"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, token []byte) {
		c, err := v.Verify(token, TypePlay)
		if err == nil && string(token) != good {
			t.Fatalf("Verify(%q) = %+v: a token that was never minted verified", token, c)
		}
		if err != nil && ReasonOf(err) == "" {
			t.Fatalf("Verify(%q) = %v, which has no Reason", token, err)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	clk := newClock()
	s := NewSigner("k1", newKey(b), clk.now)
	tok := mint(b, s, playClaims(), time.Hour)
	b.Run("cold", func(b *testing.B) {
		v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now, CacheSize: -1})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok, TypePlay); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok, TypePlay); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		v := NewVerifier(s.KeySet(), VerifierOptions{Now: clk.now})
		v.Verify(tok, TypePlay)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(tok, TypePlay); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
