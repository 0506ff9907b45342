package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Refresh-token errors.
var (
	// ErrTokenInvalid: the refresh token is unknown, expired, or its
	// session was ended.
	ErrTokenInvalid = errors.New("refresh token invalid")
	// ErrTokenReused: a refresh token that was already exchanged came back
	// outside the grace window (or after its successor was used). The whole
	// family has been revoked.
	ErrTokenReused = errors.New("refresh token reused")
)

// Session is one refresh-token family (a login) and its newest token.
type Session struct {
	FamilyID  int64
	UserID    int64
	ExpiresAt time.Time // of the newest token
}

// CreateSession starts a new family for userID whose first token has the
// SHA-256 hash tokenHash and expires at expires.
func (s *Store) CreateSession(ctx context.Context, userID int64, tokenHash []byte, expires time.Time) (Session, error) {
	now := s.nowMs()
	sess := Session{UserID: userID, ExpiresAt: fromMs(expires.UnixMilli())}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `INSERT INTO refresh_families (user_id, created_at) VALUES ($1, $2) RETURNING id`,
			userID, now).Scan(&sess.FamilyID); err != nil {
			return err
		}
		_, err := insertRefresh(ctx, tx, sess.FamilyID, tokenHash, now, expires.UnixMilli())
		return err
	})
	if err != nil {
		return Session{}, fmt.Errorf("store: create session for user %d: %w", userID, err)
	}
	return sess, nil
}

func insertRefresh(ctx context.Context, tx *sql.Tx, family int64, hash []byte, now, expires int64) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO refresh_tokens (family_id, token_hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4) RETURNING id`, family, hash, now, expires).Scan(&id)
	return id, err
}

// RotateRefresh exchanges the refresh token whose hash is oldHash for a new
// one (hash newHash, expiring at expires) in the same family.
//
// Every token is exchanged once. If an exchanged token comes back within
// grace of its exchange and the token it was exchanged for has not been
// used yet (the client lost the response), that successor is retired and
// a new one issued: one live token per family, never a fork. Any other
// reuse revokes the family and returns ErrTokenReused. Unknown, expired and
// revoked tokens return ErrTokenInvalid.
func (s *Store) RotateRefresh(ctx context.Context, oldHash, newHash []byte, expires time.Time, grace time.Duration) (Session, error) {
	now := s.nowMs()
	var sess Session
	reused := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var (
			tokenID, expiresAt int64
			usedAt, replacedBy sql.NullInt64
			revokedAt          sql.NullInt64
		)
		err := tx.QueryRowContext(ctx, `SELECT t.id, t.family_id, t.expires_at, t.used_at, t.replaced_by, f.user_id, f.revoked_at
			FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
			WHERE t.token_hash = $1`, oldHash).
			Scan(&tokenID, &sess.FamilyID, &expiresAt, &usedAt, &replacedBy, &sess.UserID, &revokedAt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return ErrTokenInvalid
		case err != nil:
			return err
		case revokedAt.Valid, now >= expiresAt:
			return ErrTokenInvalid
		}
		if usedAt.Valid {
			// Already exchanged: a lost response within grace, or theft.
			retired := false
			if now-usedAt.Int64 <= grace.Milliseconds() && replacedBy.Valid {
				res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, now, replacedBy.Int64)
				if err != nil {
					return err
				}
				n, _ := res.RowsAffected()
				retired = n == 1
			}
			if !retired {
				reused = true
				return revokeFamily(ctx, tx, sess.FamilyID, now, "reuse")
			}
		} else {
			res, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, now, tokenID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return ErrTokenInvalid // cannot happen with serialised writers; be safe
			}
		}
		newID, err := insertRefresh(ctx, tx, sess.FamilyID, newHash, now, expires.UnixMilli())
		if err != nil {
			return err
		}
		sess.ExpiresAt = fromMs(expires.UnixMilli())
		_, err = tx.ExecContext(ctx, `UPDATE refresh_tokens SET replaced_by = $1 WHERE id = $2`, newID, tokenID)
		return err
	})
	switch {
	case err != nil:
		return Session{}, fmt.Errorf("store: rotate refresh token: %w", err)
	case reused:
		return Session{UserID: sess.UserID, FamilyID: sess.FamilyID}, fmt.Errorf("store: rotate refresh token: family %d revoked: %w", sess.FamilyID, ErrTokenReused)
	}
	return sess, nil
}

func revokeFamily(ctx context.Context, tx *sql.Tx, family, now int64, reason string) error {
	_, err := tx.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2
		WHERE id = $3 AND revoked_at IS NULL`, now, reason, family)
	return err
}

// RevokeSession ends the family of the refresh token whose hash is
// tokenHash (logout). Unknown tokens are not an error: the session is
// over either way.
func (s *Store) RevokeSession(ctx context.Context, tokenHash []byte) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var family int64
		err := tx.QueryRowContext(ctx, `SELECT family_id FROM refresh_tokens WHERE token_hash = $1`, tokenHash).Scan(&family)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		return revokeFamily(ctx, tx, family, s.nowMs(), "logout")
	})
	if err != nil {
		return fmt.Errorf("store: revoke session: %w", err)
	}
	return nil
}

// RevokeUserSessions ends every session of userID and returns how many
// were live.
func (s *Store) RevokeUserSessions(ctx context.Context, userID int64, reason string) (int64, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2
		WHERE user_id = $3 AND revoked_at IS NULL`, s.nowMs(), reason, userID)
	if err != nil {
		return 0, fmt.Errorf("store: revoke sessions of user %d: %w", userID, err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// SessionRevoked reports whether family has been revoked (or does not
// exist).
func (s *Store) SessionRevoked(ctx context.Context, family int64) (bool, error) {
	var revoked sql.NullInt64
	err := s.read.QueryRowContext(ctx, `SELECT revoked_at FROM refresh_families WHERE id = $1`, family).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: session %d: %w", family, err)
	}
	return revoked.Valid, nil
}

// PruneRefreshTokens deletes refresh tokens that expired before before, and
// families left without tokens, and returns how many tokens went.
func (s *Store) PruneRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE expires_at < $1`, before.UnixMilli())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		_, err = tx.ExecContext(ctx, `DELETE FROM refresh_families WHERE created_at < $1
			AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = refresh_families.id)`, before.UnixMilli())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune refresh tokens: %w", err)
	}
	return n, nil
}
