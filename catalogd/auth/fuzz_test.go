package auth

import (
	"testing"
)

// FuzzVerifyAccessToken feeds Verify arbitrary bytes and mutations of a
// valid token: it must never panic, and nothing but the token itself may
// verify.
func FuzzVerifyAccessToken(f *testing.F) {
	at, _, _ := newTokens(f)
	valid, _, err := at.Issue(AccessClaims{UserID: 1, SessionID: 2, Tier: "free", Role: "listener"})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{valid, "", ".", "..", "a.b.c", valid + ".", valid[:len(valid)-1], "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiJ9.e30.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := at.Verify(tok)
		if err == nil && tok != valid {
			t.Fatalf("Verify accepted %q as %+v", tok, c)
		}
	})
}
