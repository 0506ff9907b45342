package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Leases: a named lease is held by at most one holder (a catalogd
// instance's random id) until it expires. The holder renews it well before
// then; another instance takes it over once it has expired, so a holder
// that died without releasing it (killed, cut off from the database) is
// replaced within one lease term. On PostgreSQL the term runs on the
// database's clock (now()), so instances with skewed clocks agree on who
// holds a lease; on SQLite on the store clock.
//
// A lease row rather than a session advisory lock: an advisory lock is
// released when its connection ends, which for a holder whose machine
// vanished (no FIN, no RST) is only when TCP keepalive gives up (minutes
// with default settings), and it does not survive a transaction-pooling
// proxy; a lease expires on a clock, so takeover time is bounded by the
// term whatever happened to the holder. Its cost, one single-row UPDATE
// per renewal, is nothing next to the work it guards.

// AcquireLease takes or renews lease name for holder for ttl and reports
// whether holder holds it now: true when the lease was free, expired or
// already holder's (its expiry then moves to ttl from now), false when
// another holder has it.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var q string
	var args []any
	if s.dialect == Postgres {
		q = `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, now() + CAST($3 AS BIGINT) * interval '1 millisecond')
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= now()
			RETURNING holder`
		args = []any{name, holder, ttl.Milliseconds()}
	} else {
		now := s.nowMs()
		q = `INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE leases.holder = excluded.holder OR leases.expires_at <= $4
			RETURNING holder`
		args = []any{name, holder, now + ttl.Milliseconds(), now}
	}
	var got string
	err := s.write.QueryRowContext(ctx, q, args...).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("store: lease %s: %w", name, err)
	}
	return true, nil
}

// ReleaseLease gives up lease name if holder holds it, so another holder
// may take it at once.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return fmt.Errorf("store: release lease %s: %w", name, err)
	}
	return nil
}
