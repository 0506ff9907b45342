package edge

import (
	"sync"
	"time"
)

// BreakerState is the state of a circuit breaker.
type BreakerState int

const (
	// BreakerClosed lets every request through.
	BreakerClosed BreakerState = iota
	// BreakerHalfOpen lets one probe through; its outcome closes or
	// reopens the breaker.
	BreakerHalfOpen
	// BreakerOpen lets nothing through until the cool-down has passed.
	BreakerOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerHalfOpen:
		return "half-open"
	case BreakerOpen:
		return "open"
	}
	return "unknown"
}

// Breaker is a consecutive-failure circuit breaker for one origin.
//
// Closed, it counts consecutive failures; Threshold of them open it. Open,
// it refuses everything (a dead origin then costs nothing) until Cooldown
// has passed; then it is half-open and lets exactly one probe through. The
// probe's success closes it, its failure opens it for another Cooldown. A
// probe that never reports back (its caller vanished) is replaced by a new
// one after another Cooldown.
//
// Breaker is safe for concurrent use.
type Breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	mu       sync.Mutex
	state    BreakerState
	fails    int
	openedAt time.Time
	probeAt  time.Time
	probing  bool
}

// NewBreaker returns a closed breaker. threshold < 1 is taken as 1.
func NewBreaker(threshold int, cooldown time.Duration, now func() time.Time) *Breaker {
	return &Breaker{threshold: max(threshold, 1), cooldown: cooldown, now: now}
}

// Allow reports whether a request may go to the origin now. A true answer
// obliges the caller to report Success or Failure.
func (b *Breaker) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return true
	case BreakerOpen:
		now := b.now()
		if now.Sub(b.openedAt) < b.cooldown {
			return false
		}
		b.state, b.probing, b.probeAt = BreakerHalfOpen, true, now
		return true
	default: // half-open
		now := b.now()
		if b.probing && now.Sub(b.probeAt) < b.cooldown {
			return false
		}
		b.probing, b.probeAt = true, now
		return true
	}
}

// Success records an answer from the origin: the breaker closes.
func (b *Breaker) Success() {
	b.mu.Lock()
	b.state, b.fails, b.probing = BreakerClosed, 0, false
	b.mu.Unlock()
}

// Failure records a failed request (connection error, timeout, 5xx).
func (b *Breaker) Failure() {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		b.fails++
		if b.fails >= b.threshold {
			b.state, b.openedAt = BreakerOpen, b.now()
		}
	case BreakerHalfOpen:
		b.state, b.openedAt, b.probing = BreakerOpen, b.now(), false
	case BreakerOpen:
		// A request allowed before the breaker opened reports late;
		// the breaker is already open.
	}
}

// State returns the current state. An open breaker whose cool-down has
// passed reports half-open (the next Allow will let a probe through).
func (b *Breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == BreakerOpen && b.now().Sub(b.openedAt) >= b.cooldown {
		return BreakerHalfOpen
	}
	return b.state
}
