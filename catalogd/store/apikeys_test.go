package store

import (
	"context"
	"errors"
	"testing"
)

func TestSubsonicCredentials(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, _ *testClock) { testSubsonicCredentials(t, s) })
}

func testSubsonicCredentials(t *testing.T, s *Store) {
	ctx := context.Background()
	user := func(email string) User {
		u, err := s.CreateUser(ctx, NewUser{Email: email, PasswordHash: "x", DisplayName: email})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ann, bob := user("ann@example.com"), user("bob@example.com")
	k, err := s.CreateSubsonicCredential(ctx, ann.ID, true, "phone", []byte("hash-1"))
	if err != nil {
		t.Fatal(err)
	}
	if u, err := s.UserBySubsonicKey(ctx, []byte("hash-1")); err != nil || u.ID != ann.ID {
		t.Errorf("UserBySubsonicKey = %v, %v, want ann", u.ID, err)
	}
	if _, err := s.CreateSubsonicCredential(ctx, bob.ID, true, "dup", []byte("hash-1")); !errors.Is(err, ErrConflict) {
		t.Errorf("same hash again: %v, want ErrConflict", err)
	}
	if _, err := s.UserBySubsonicKey(ctx, []byte("nope")); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hash: %v, want ErrNotFound", err)
	}
	// App passwords are a list of their own.
	if _, err := s.CreateSubsonicCredential(ctx, ann.ID, false, "desktop", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.SubsonicCredentials(ctx, ann.ID, true)
	pws, _ := s.SubsonicCredentials(ctx, ann.ID, false)
	if len(keys) != 1 || keys[0].Name != "phone" || len(pws) != 1 || string(pws[0].Secret) != "sealed" {
		t.Errorf("lists: %+v %+v", keys, pws)
	}
	// Only the owner revokes.
	if err := s.DeleteSubsonicCredential(ctx, bob.ID, true, k.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("bob revoking ann's key: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSubsonicCredential(ctx, ann.ID, true, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserBySubsonicKey(ctx, []byte("hash-1")); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoked key: %v, want ErrNotFound", err)
	}
	// At most MaxSubsonicCredentials of a kind.
	for i := range MaxSubsonicCredentials - 1 {
		if _, err := s.CreateSubsonicCredential(ctx, ann.ID, false, "more", []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateSubsonicCredential(ctx, ann.ID, false, "one too many", []byte("x")); !errors.Is(err, ErrTooMany) {
		t.Errorf("past the limit: %v, want ErrTooMany", err)
	}
}
