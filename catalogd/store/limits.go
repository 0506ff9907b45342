package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Login limits shared by every catalogd on the database: the generic cell
// rate algorithm (the one auth.MemoryLimiter runs in memory) with its
// state, one theoretical arrival time (TAT) per key, in login_limits (an
// UNLOGGED table on PostgreSQL). One attempt is one statement: an UPSERT
// that moves the TAT only when the attempt fits, atomically, so
// concurrent attempts on several instances never spend more than the
// burst. Times are the caller's clock.

// SpendAttempt spends one attempt of key, which may make burst attempts
// per period: it reports whether the attempt is allowed and, when not, how
// long until the next one is.
func (s *Store) SpendAttempt(ctx context.Context, key string, burst int, period time.Duration, now time.Time) (bool, time.Duration, error) {
	burst = max(1, burst)
	interval := (period / time.Duration(burst)).Milliseconds()
	nowMs, periodMs := now.UnixMilli(), period.Milliseconds()
	var tat int64
	err := s.write.QueryRowContext(ctx, `INSERT INTO login_limits (key, tat) VALUES ($1, CAST($2 AS BIGINT) + CAST($3 AS BIGINT))
		ON CONFLICT (key) DO UPDATE SET tat = (CASE WHEN login_limits.tat > $2 THEN login_limits.tat ELSE $2 END) + $3
		WHERE (CASE WHEN login_limits.tat > $2 THEN login_limits.tat ELSE $2 END) + $3 - CAST($4 AS BIGINT) <= $2
		RETURNING tat`, key, nowMs, interval, periodMs).Scan(&tat)
	if err == nil {
		return true, 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, 0, fmt.Errorf("store: login limit: %w", err)
	}
	// Refused: the row was left alone; read it for the wait.
	if err := s.write.QueryRowContext(ctx, `SELECT tat FROM login_limits WHERE key = $1`, key).Scan(&tat); err != nil {
		return false, time.Duration(interval) * time.Millisecond, nil // only the hint is lost
	}
	wait := max(time.Millisecond, time.Duration(tat+interval-periodMs-nowMs)*time.Millisecond)
	return false, wait, nil
}

// ResetAttempts forgets key's attempts (e.g. after a successful login).
func (s *Store) ResetAttempts(ctx context.Context, key string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM login_limits WHERE key = $1`, key); err != nil {
		return fmt.Errorf("store: login limit: %w", err)
	}
	return nil
}

// PruneAttempts deletes the keys whose allowance has fully recovered by
// now and returns how many.
func (s *Store) PruneAttempts(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM login_limits WHERE tat <= $1`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: prune login limits: %w", err)
	}
	return res.RowsAffected()
}
