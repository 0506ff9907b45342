package auth

import (
	"sync"
	"time"
)

// Limiter is an in-memory rate limiter keyed by string (an account, a
// client address), using the generic cell rate algorithm: each key may
// spend Burst attempts at once and regains one every Period/Burst. State
// is per process, so behind a load balancer each catalogd instance limits
// on its own (the effective limit is the per-instance limit times the
// instances a client reaches). It is safe for concurrent use.
type Limiter struct {
	burst    int
	interval time.Duration // Period / Burst: the cost of one attempt
	period   time.Duration
	now      func() time.Time
	maxKeys  int

	mu        sync.Mutex
	tat       map[string]time.Time // theoretical arrival time per key
	lastSweep time.Time
}

// NewLimiter allows burst attempts per key per period. It remembers at
// most maxKeys keys; when full it forgets keys whose allowance has fully
// recovered (and, if that is not enough, refuses new keys rather than
// growing: a flood of addresses cannot exhaust memory). now is the clock.
func NewLimiter(burst int, period time.Duration, maxKeys int, now func() time.Time) *Limiter {
	burst = max(1, burst)
	return &Limiter{
		burst: burst, period: period, interval: period / time.Duration(burst),
		now: now, maxKeys: max(1, maxKeys), tat: map[string]time.Time{},
	}
}

// Allow spends one attempt of key. When the key has none left it returns
// false and how long until the next attempt is allowed.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, seen := l.tat[key]
	if !seen || tat.Before(now) {
		tat = now
	}
	next := tat.Add(l.interval)
	// The attempt fits if, after it, the key is at most `period` ahead.
	if allowAt := next.Add(-l.period); allowAt.After(now) {
		return false, allowAt.Sub(now)
	}
	if !seen && len(l.tat) >= l.maxKeys {
		if now.Sub(l.lastSweep) >= time.Second { // sweeping is O(keys): at most once a second
			l.sweep(now)
			l.lastSweep = now
		}
		if len(l.tat) >= l.maxKeys {
			return false, l.interval
		}
	}
	l.tat[key] = next
	return true, 0
}

// Reset forgets key (e.g. after a successful login).
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.tat, key)
}

// sweep drops keys whose allowance has fully recovered. Caller holds mu.
func (l *Limiter) sweep(now time.Time) {
	for k, tat := range l.tat {
		if !tat.After(now) {
			delete(l.tat, k)
		}
	}
}

// Len returns how many keys the limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tat)
}
