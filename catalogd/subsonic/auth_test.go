package subsonic

import (
	"crypto/ed25519"
	"testing"
	"time"

	"riff/internal/testrun"
)

func TestSealer(t *testing.T) {
	_, signing, _ := ed25519.GenerateKey(nil)
	s, err := newSealer(DeriveKey(signing))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.seal(7, "app-password")
	if got, ok := s.open(7, sealed); !ok || got != "app-password" {
		t.Errorf("open(7) = %q, %v, want app-password, true", got, ok)
	}
	if _, ok := s.open(8, sealed); ok {
		t.Error("a password sealed for user 7 opens for user 8")
	}
	sealed[len(sealed)-1] ^= 1
	if _, ok := s.open(7, sealed); ok {
		t.Error("a tampered password opens")
	}
	if _, ok := s.open(7, nil); ok {
		t.Error("nothing opens")
	}
	_, other, _ := ed25519.GenerateKey(nil)
	s2, _ := newSealer(DeriveKey(other))
	if _, ok := s2.open(7, s.seal(7, "x")); ok {
		t.Error("a password opens under another signing key")
	}
	if _, err := newSealer([]byte("short")); err == nil {
		t.Error("newSealer took a short key")
	}
}

func TestBlockList(t *testing.T) {
	clock := testrun.NewClock()
	b := newBlockList(2, clock.Now)
	b.block("a", time.Minute)
	if got := b.until("a"); got != time.Minute {
		t.Errorf("until(a) = %v, want 1m", got)
	}
	if got := b.until("b"); got != 0 {
		t.Errorf("until(b) = %v, want 0", got)
	}
	clock.Advance(time.Minute)
	if got := b.until("a"); got != 0 {
		t.Errorf("until(a) after a minute = %v, want 0", got)
	}
	b.block("a", time.Second)
	b.block("b", time.Second)
	b.block("c", time.Second) // full: forgets all, keeps c
	if b.until("c") == 0 || len(b.m) > 2 {
		t.Errorf("full list: %v", b.m)
	}
}

func TestPlainPassword(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sesame", "sesame"},
		{"enc:736573616d65", "sesame"},
		{"enc:zz", "enc:zz"},
	} {
		if got := plainPassword(tc.in); got != tc.want {
			t.Errorf("plainPassword(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
