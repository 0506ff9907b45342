package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"golang.org/x/text/unicode/norm"
)

// Tiers and roles of users.
const (
	TierFree    = "free"
	TierPremium = "premium"

	RoleListener = "listener"
	RoleArtist   = "artist"
	RoleAdmin    = "admin"
)

// User is an account. Email, PasswordHash and Preferences are private:
// only the user sees them.
type User struct {
	ID           int64
	Email        string
	PasswordHash string
	DisplayName  string
	AvatarURL    string
	Country      string
	Tier         string
	Role         string
	Preferences  []byte // a JSON object
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// NewUser is what CreateUser needs.
type NewUser struct {
	Email        string
	PasswordHash string
	DisplayName  string
	Country      string
}

// EmailKey is the form emails are compared in: NFKC (fullwidth and other
// compatibility forms are the plain characters; canonically equal
// spellings are one) and lower case, so that addresses differing only in
// these are one account.
func EmailKey(email string) string {
	return strings.ToLower(norm.NFKC.String(strings.TrimSpace(email)))
}

// CreateUser adds an account. The error wraps ErrConflict when the email is
// taken (case-insensitively).
func (s *Store) CreateUser(ctx context.Context, nu NewUser) (User, error) {
	now := s.nowMs()
	u := User{
		Email: nu.Email, PasswordHash: nu.PasswordHash, DisplayName: nu.DisplayName, Country: nu.Country,
		Tier: TierFree, Role: RoleListener, Preferences: []byte("{}"),
		CreatedAt: fromMs(now), UpdatedAt: fromMs(now),
	}
	err := s.write.QueryRowContext(ctx, `INSERT INTO users
		(email, email_key, password_hash, display_name, country, tier, role, preferences, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id`,
		u.Email, EmailKey(u.Email), u.PasswordHash, u.DisplayName, u.Country, u.Tier, u.Role, string(u.Preferences), now,
	).Scan(&u.ID)
	if isUnique(err) {
		return User{}, fmt.Errorf("store: create user: email taken: %w", ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user: %w", err)
	}
	return u, nil
}

const userColumns = `id, email, password_hash, display_name, avatar_url, country, tier, role, preferences, created_at, updated_at`

func scanUser(row scanner) (User, error) {
	var u User
	var created, updated int64
	var prefs []byte
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.DisplayName, &u.AvatarURL, &u.Country,
		&u.Tier, &u.Role, &prefs, &created, &updated)
	u.Preferences = append([]byte(nil), prefs...)
	u.CreatedAt, u.UpdatedAt = fromMs(created), fromMs(updated)
	return u, err
}

// UserByID returns the user with id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return User{}, notFound(err, "user", id)
	}
	return u, nil
}

// UserByEmail returns the user whose email equals email case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email_key = $1`, EmailKey(email)))
	if err != nil {
		return User{}, notFound(err, "user with email", "(redacted)")
	}
	return u, nil
}

// ProfileUpdate holds the profile fields to change; nil fields stay as
// they are.
type ProfileUpdate struct {
	DisplayName *string
	AvatarURL   *string
	Country     *string
	Preferences []byte // a JSON object; nil leaves preferences unchanged
}

// UpdateProfile changes the given fields of user id and returns the user.
func (s *Store) UpdateProfile(ctx context.Context, id int64, p ProfileUpdate) (User, error) {
	var set setList
	if p.DisplayName != nil {
		set.add("display_name", *p.DisplayName)
	}
	if p.AvatarURL != nil {
		set.add("avatar_url", *p.AvatarURL)
	}
	if p.Country != nil {
		set.add("country", *p.Country)
	}
	if p.Preferences != nil {
		set.add("preferences", string(p.Preferences)) // text: JSONB on PostgreSQL, checked JSON on SQLite
	}
	set.add("updated_at", s.nowMs())
	q := `UPDATE users SET ` + set.String() + ` WHERE id = ` + set.arg(id) + ` RETURNING ` + userColumns
	u, err := scanUser(s.write.QueryRowContext(ctx, q, set.args...))
	if err != nil {
		return User{}, notFound(err, "user", id)
	}
	return u, nil
}

// SetPasswordHash replaces the stored password hash of user id (used to
// upgrade hashes made with older parameters at login).
func (s *Store) SetPasswordHash(ctx context.Context, id int64, hash string) error {
	return s.execOne(ctx, s.w, "user", id, `UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3`, hash, s.nowMs(), id)
}

// SetTier sets the subscription tier of user id (TierFree or TierPremium).
func (s *Store) SetTier(ctx context.Context, id int64, tier string) error {
	return s.execOne(ctx, s.w, "user", id, `UPDATE users SET tier = $1, updated_at = $2 WHERE id = $3`, tier, s.nowMs(), id)
}

// SetRole sets the role of user id (RoleListener, RoleArtist or RoleAdmin).
func (s *Store) SetRole(ctx context.Context, id int64, role string) error {
	return s.execOne(ctx, s.w, "user", id, `UPDATE users SET role = $1, updated_at = $2 WHERE id = $3`, role, s.nowMs(), id)
}

// execer is what *sql.DB and *sql.Tx share for statements without rows.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// execOne runs an UPDATE that must touch exactly one row (else ErrNotFound).
func (s *Store) execOne(ctx context.Context, db execer, what string, id any, q string, args ...any) error {
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: update %s %v: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: %s %v: %w", what, id, ErrNotFound)
	}
	return nil
}
