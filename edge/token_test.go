package edge

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"riff/internal/playtoken"
)

// TestTokenRefusals sends every kind of bad token through the edge: each
// is 403, counted under its reason, and never reaches the origin.
func TestTokenRefusals(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	key := songA + "aac_128.mp4"
	now := time.Now()
	claims := playtoken.Claims{Type: playtoken.TypePlay, Subject: "u1", Prefix: songA}
	mint := func(s *playtoken.Signer, c playtoken.Claims) string {
		t.Helper()
		tok, err := s.Mint(c, 10*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := mint(h.signer, claims)
	parts := strings.Split(good, ".")
	b64 := base64.RawURLEncoding

	past := playtoken.NewSigner("k1", h.priv, func() time.Time { return now.Add(-time.Hour) })
	future := claims
	future.NotBefore = now.Add(time.Hour)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

	// The payload with a wider prefix, under the original signature.
	var payload map[string]any
	raw, _ := b64.DecodeString(parts[1])
	json.Unmarshal(raw, &payload)
	payload["pfx"] = "artists/"
	wider, _ := json.Marshal(payload)
	tamperedPayload := parts[0] + "." + b64.EncodeToString(wider) + "." + parts[2]

	sig := []byte(parts[2])
	// Swap one character for another base64url character (a bit flip can
	// leave the alphabet: 'A'^1 is '@'), so the token stays well formed and
	// only the signature is wrong.
	if sig[10] == 'A' {
		sig[10] = 'B'
	} else {
		sig[10] = 'A'
	}
	tamperedSig := parts[0] + "." + parts[1] + "." + string(sig)

	none := b64.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"k1"}`)) + "." + parts[1] + "."

	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "u1", "typ": "play", "pfx": songA, "exp": now.Add(time.Hour).Unix(),
	})
	hs.Header["kid"] = "k1"
	hsTok, err := hs.SignedString([]byte(h.signer.Public()))
	if err != nil {
		t.Fatal(err)
	}

	purgeTok := h.purgeToken(songA)
	tests := []struct {
		name, token, key, reason string
	}{
		{"expired", mint(past, claims), key, "expired"},
		{"not yet valid", mint(h.signer, future), key, "not_yet_valid"},
		{"wrong prefix", mint(h.signer, playtoken.Claims{Type: playtoken.TypePlay, Subject: "u1", Prefix: songB}), key, "wrong_prefix"},
		{"prefix of a sibling folder", mint(h.signer, playtoken.Claims{Type: playtoken.TypePlay, Subject: "u1", Prefix: "artists/1/albums/2/songs/3"}), "artists/1/albums/2/songs/33/v1/x.mp4", "wrong_prefix"},
		{"tampered payload", tamperedPayload, songB + "aac_128.mp4", "bad_signature"},
		{"tampered signature", tamperedSig, key, "bad_signature"},
		{"alg none", none, key, "bad_alg"},
		{"HS256 with the public key", hsTok, key, "bad_alg"},
		{"unknown kid", mint(playtoken.NewSigner("k2", otherKey, time.Now), claims), key, "unknown_kid"},
		{"purge token used to play", purgeTok, key, "wrong_type"},
		{"empty", "", key, "malformed"},
		{"garbage", "garbage", key, "malformed"},
		{"three garbage parts", "a.b.c", key, "malformed"},
	}
	counts := map[string]float64{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"GET", "HEAD"} {
				r := h.do(method, h.url+"/t/"+tt.token+"/"+tt.key, "Range", "bytes=0-99")
				if r.status != 403 {
					t.Errorf("%s = %d, want 403", method, r.status)
				}
				if method == "GET" && string(r.body) != "forbidden\n" {
					t.Errorf("body = %q, want a bare forbidden", r.body)
				}
				counts[tt.reason]++
			}
		})
	}
	// The playback token is refused on the purge endpoint.
	body := []byte(`{"prefixes":["` + songA[:len("artists/1/albums/2/songs/3/")] + `"]}`)
	if r, _ := doRequest(h.client, "POST", h.admin+"/purge", body, "Authorization", "Bearer "+good); r.status != 403 {
		t.Errorf("play token on /purge = %d, want 403", r.status)
	}
	counts["wrong_type"]++
	for reason, want := range counts {
		if got := h.metric(`riff_edge_token_refusals_total{reason="` + reason + `"}`); got != want {
			t.Errorf("refusals{reason=%q} = %v, want %v", reason, got, want)
		}
	}
	if n := h.origins[0].requests(); n != 0 {
		t.Errorf("refused requests reached the origin %d times", n)
	}
	// And the good token does work, so the refusals were about the tokens.
	if r := h.do("GET", h.object(good, key), "Range", "bytes=0-99"); r.status != 206 {
		t.Errorf("good token = %d", r.status)
	}
}
