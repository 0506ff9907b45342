package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Subsonic credentials (issue 19): API keys for the OpenSubsonic apiKey
// extension, kept as a SHA-256 hash, and app passwords for the classic
// u+t+s token scheme, kept sealed (the scheme needs the password back; the
// sealing is package subsonic's). Both belong to one user and go with the
// account.

// MaxSubsonicCredentials is how many API keys, and how many app
// passwords, one user may hold.
const MaxSubsonicCredentials = 20

// ErrTooMany: the user already holds MaxSubsonicCredentials of that kind.
var ErrTooMany = fmt.Errorf("too many credentials (at most %d)", MaxSubsonicCredentials)

// SubsonicCredential is an API key or an app password. Secret is the
// key's hash or the sealed password.
type SubsonicCredential struct {
	ID        int64
	UserID    int64
	Name      string
	Secret    []byte
	CreatedAt time.Time
}

// credentialTable names the table of a credential kind.
func credentialTable(apiKey bool) (table, col string) {
	if apiKey {
		return "subsonic_api_keys", "key_hash"
	}
	return "subsonic_app_passwords", "sealed"
}

// CreateSubsonicCredential stores an API key (apiKey, secret its hash) or
// an app password (secret sealed). The error wraps ErrTooMany past
// MaxSubsonicCredentials and ErrConflict for a key hash already stored.
func (s *Store) CreateSubsonicCredential(ctx context.Context, userID int64, apiKey bool, name string, secret []byte) (SubsonicCredential, error) {
	table, col := credentialTable(apiKey)
	c := SubsonicCredential{UserID: userID, Name: name, Secret: secret}
	now := s.nowMs()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table+` WHERE user_id = $1`, userID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxSubsonicCredentials {
			return ErrTooMany
		}
		return tx.QueryRowContext(ctx, `INSERT INTO `+table+` (user_id, name, `+col+`, created_at)
			VALUES ($1, $2, $3, $4) RETURNING id`, userID, name, secret, now).Scan(&c.ID)
	})
	if isUnique(err) {
		err = ErrConflict
	}
	if err != nil {
		return SubsonicCredential{}, fmt.Errorf("store: create %s of user %d: %w", table, userID, err)
	}
	c.CreatedAt = fromMs(now)
	return c, nil
}

// SubsonicCredentials returns the API keys (apiKey) or app passwords of a
// user, oldest first.
func (s *Store) SubsonicCredentials(ctx context.Context, userID int64, apiKey bool) ([]SubsonicCredential, error) {
	table, col := credentialTable(apiKey)
	rows, err := s.read.QueryContext(ctx, `SELECT id, user_id, name, `+col+`, created_at FROM `+table+`
		WHERE user_id = $1 ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: %s of user %d: %w", table, userID, err)
	}
	defer rows.Close()
	var out []SubsonicCredential
	for rows.Next() {
		var c SubsonicCredential
		var created int64
		if err := rows.Scan(&c.ID, &c.UserID, &c.Name, &c.Secret, &created); err != nil {
			return nil, fmt.Errorf("store: %s of user %d: %w", table, userID, err)
		}
		c.CreatedAt = fromMs(created)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s of user %d: %w", table, userID, err)
	}
	return out, nil
}

// UserBySubsonicKey returns the user holding the API key with this hash
// (ErrNotFound: none, e.g. revoked).
func (s *Store) UserBySubsonicKey(ctx context.Context, hash []byte) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE id = (SELECT user_id FROM subsonic_api_keys WHERE key_hash = $1)`, hash))
	if err != nil {
		return User{}, notFound(err, "api key", "")
	}
	return u, nil
}

// DeleteSubsonicCredential revokes an API key or app password of userID
// (ErrNotFound: no such credential of that user).
func (s *Store) DeleteSubsonicCredential(ctx context.Context, userID int64, apiKey bool, id int64) error {
	table, _ := credentialTable(apiKey)
	res, err := s.write.ExecContext(ctx, `DELETE FROM `+table+` WHERE id = $1 AND user_id = $2`, id, userID)
	if err != nil {
		return fmt.Errorf("store: delete %s %d: %w", table, id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: %s %d: %w", table, id, ErrNotFound)
	}
	return nil
}
