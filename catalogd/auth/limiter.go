package auth

import (
	"context"
	"time"
)

// Attempts holds the state of every Limiter: per key, the generic cell
// rate algorithm's theoretical arrival time, spent and reset atomically.
// *store.Store is one (login_limits, see store.SpendAttempt).
type Attempts interface {
	SpendAttempt(ctx context.Context, key string, burst int, period time.Duration, now time.Time) (bool, time.Duration, error)
	ResetAttempts(ctx context.Context, key string) error
}

// Limiter is a rate limiter keyed by string (an account, a client
// address) using the generic cell rate algorithm: each key may spend Burst
// attempts at once and regains one every Period/Burst. Its state is in the
// database, so every catalogd on the database shares it: the limit holds
// per key whichever instances a client's attempts reach. One attempt costs
// one UPSERT (see docs/catalogd.md for the measured cost). The database
// bounds memory; expired keys are pruned (store.PruneAttempts). It is safe
// for concurrent use.
type Limiter struct {
	st     Attempts
	scope  string
	burst  int
	period time.Duration
	now    func() time.Time
}

// NewLimiter allows burst attempts per key per period, keeping its state
// in st under keys prefixed by scope and ":" (one scope per limit: "a"
// accounts, "ip" addresses). now is the clock.
func NewLimiter(st Attempts, scope string, burst int, period time.Duration, now func() time.Time) *Limiter {
	return &Limiter{st: st, scope: scope + ":", burst: max(1, burst), period: period, now: now}
}

// Allow spends one attempt of key. When the key has none left it returns
// false and how long until the next attempt is allowed. An error (the
// database unreachable) allows nothing.
func (l *Limiter) Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration, err error) {
	return l.st.SpendAttempt(ctx, l.scope+key, l.burst, l.period, l.now())
}

// Reset forgets key (e.g. after a successful login).
func (l *Limiter) Reset(ctx context.Context, key string) error {
	return l.st.ResetAttempts(ctx, l.scope+key)
}
