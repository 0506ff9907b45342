package catalogd

import (
	"sync"
	"time"
)

// uploadRetry is the Retry-After of an upload refused for capacity.
const uploadRetry = 30 * time.Second

// uploadGate bounds the uploads being received and checked at once, per
// uploading account and in total, and the spool bytes they may hold
// (Config.UploadsPerUser, UploadsTotal, SpoolMaxBytes). It is safe for
// concurrent use.
type uploadGate struct {
	maxPerUser, maxTotal int
	maxSpool             int64

	mu      sync.Mutex
	perUser map[int64]int
	total   int
	spool   int64
}

func newUploadGate(perUser, total int, spool int64) *uploadGate {
	return &uploadGate{maxPerUser: perUser, maxTotal: total, maxSpool: spool, perUser: map[int64]int{}}
}

// enter admits an upload by user that may spool up to bytes, or says why
// not: 429 too_many_uploads (this account, or everyone, is at the cap) or
// 503 spool_full, both with Retry-After. leave must be called once the
// upload's spooled files are gone.
func (g *uploadGate) enter(user, bytes int64) (leave func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.perUser[user] >= g.maxPerUser:
		return nil, &apiError{kind: kindRateLimited, code: "too_many_uploads", retryAfter: uploadRetry,
			detail: "You have too many uploads in progress; wait for one to finish."}
	case g.total >= g.maxTotal:
		return nil, &apiError{kind: kindRateLimited, code: "too_many_uploads", retryAfter: uploadRetry,
			detail: "The server takes too many uploads at once; try again shortly."}
	case g.spool+bytes > g.maxSpool:
		return nil, &apiError{kind: kindUnavailable, code: "spool_full", retryAfter: uploadRetry,
			detail: "The server has no room for uploads right now; try again shortly."}
	}
	g.perUser[user]++
	g.total++
	g.spool += bytes
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.perUser[user]--; g.perUser[user] <= 0 {
				delete(g.perUser, user)
			}
			g.total--
			g.spool -= bytes
		})
	}, nil
}
