package auth

import "sync"

// TokenCache remembers the results of recent token work keyed by K: the
// claims of a verified access token (AccessTokens), the playback token
// minted for a user and a song (catalogd's token reuse). It holds at most
// TokenCacheSize entries; when full it is emptied (the next requests do
// the work again), which bounds memory without bookkeeping on the hot
// path. Entries do not expire: callers check the times in what they
// stored. The zero value is ready to use; it is safe for concurrent use.
type TokenCache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

// TokenCacheSize bounds a TokenCache.
const TokenCacheSize = 100_000

// Get returns what Put stored under k.
func (c *TokenCache[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	v, ok := c.m[k]
	return v, ok
}

// Put stores v under k, emptying a full cache first.
func (c *TokenCache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= TokenCacheSize {
		c.m = make(map[K]V)
	}
	c.m[k] = v
}
