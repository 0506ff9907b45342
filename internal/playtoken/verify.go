package playtoken

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Reason says why a token was refused. Edges count refusals by reason.
type Reason string

// The reasons for refusing a token.
const (
	ReasonMalformed    Reason = "malformed"     // not a JWT, bad base64 or JSON, too long, "crit" header
	ReasonBadAlg       Reason = "bad_alg"       // alg is not EdDSA (none, HS256, …) or missing
	ReasonUnknownKID   Reason = "unknown_kid"   // no kid, or a kid not in the KeySet
	ReasonBadSignature Reason = "bad_signature" // signature does not match header and claims
	ReasonExpired      Reason = "expired"       // past exp (plus leeway)
	ReasonNotYetValid  Reason = "not_yet_valid" // before nbf (minus leeway)
	ReasonWrongType    Reason = "wrong_type"    // a purge token used to play, or the reverse
	ReasonMissingClaim Reason = "missing_claim" // no exp, typ, sub or pfx
)

// Error is the error Verify returns. Use errors.As or ReasonOf to get the
// Reason.
type Error struct {
	Reason Reason
	Err    error // the underlying cause, if any
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "playtoken: token refused: " + string(e.Reason)
	}
	return "playtoken: token refused: " + string(e.Reason) + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of a Verify error, "" for nil and for errors
// that did not come from Verify.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func refuse(r Reason, err error) error { return &Error{Reason: r, Err: err} }

// MaxTokenLen is the longest token Verify looks at; longer ones are
// malformed. Riff's tokens are about 300 bytes.
const MaxTokenLen = 4096

// VerifierOptions tunes a Verifier. The zero value gives the defaults.
type VerifierOptions struct {
	// Leeway allows for clock skew when checking exp and nbf. Default 5s;
	// negative means none.
	Leeway time.Duration
	// CacheTTL is how long a successful verification is remembered; never
	// past the token's exp plus Leeway. Default 30s; negative disables the
	// cache.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached tokens (at least 2). Default
	// 16384; negative disables the cache.
	CacheSize int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Verifier checks tokens against a KeySet. It is safe for concurrent use.
type Verifier struct {
	keys   atomic.Pointer[KeySet]
	parser *jwt.Parser
	leeway time.Duration
	ttl    time.Duration
	now    func() time.Time
	cache  *cache // nil when disabled

	// sigChecks counts verifications that went past the cheap header checks
	// to the signature: the test hook that shows a cache hit skips them.
	sigChecks atomic.Int64
}

// NewVerifier returns a Verifier that accepts tokens signed by the keys in
// ks.
func NewVerifier(ks *KeySet, opts VerifierOptions) *Verifier {
	if opts.Leeway == 0 {
		opts.Leeway = 5 * time.Second
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 30 * time.Second
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 16384
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	v := &Verifier{
		leeway: max(opts.Leeway, 0),
		ttl:    opts.CacheTTL,
		now:    opts.Now,
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithStrictDecoding(),
	)
	if opts.CacheTTL > 0 && opts.CacheSize > 0 {
		v.cache = newCache(opts.CacheSize)
	}
	v.keys.Store(ks)
	return v
}

// SetKeySet replaces the keys the Verifier accepts (rotation without a
// restart). Cached results obtained with the old set are no longer used.
func (v *Verifier) SetKeySet(ks *KeySet) {
	v.keys.Store(ks)
	if v.cache != nil {
		v.cache.clear()
	}
}

// Verify checks token and returns its claims if it is a valid token of type
// want: signed with EdDSA by a key in the set, not expired, already valid,
// with typ, sub and pfx present. Otherwise it returns an *Error. Verify is
// safe for concurrent use; a cached token costs one map lookup and no
// allocation. It does not keep token.
func (v *Verifier) Verify(token []byte, want Type) (Claims, error) {
	ks := v.keys.Load()
	now := v.now()
	if v.cache != nil {
		if c, ok := v.cache.get(token, ks, now.UnixNano()); ok {
			return checkType(c, want)
		}
	}
	if len(token) == 0 || len(token) > MaxTokenLen {
		return Claims{}, refuse(ReasonMalformed, nil)
	}
	s := string(token)
	var wc wireClaims
	tok, err := v.parser.ParseWithClaims(s, &wc, func(t *jwt.Token) (any, error) {
		if _, crit := t.Header["crit"]; crit {
			return nil, errCrit // RFC 7515 §4.1.11: we understand no extension
		}
		kid, _ := t.Header["kid"].(string)
		key, ok := ks.Key(kid)
		if !ok {
			return nil, errUnknownKID
		}
		v.sigChecks.Add(1)
		return key, nil
	})
	if err != nil {
		return Claims{}, refuse(classify(tok, err), err)
	}
	c := Claims{
		Type:     wc.Type,
		Subject:  wc.Subject,
		Prefix:   wc.Prefix,
		MaxKbps:  wc.MaxKbps,
		Expires:  wc.ExpiresAt.UTC(),
		IssuedAt: timeOf(wc.IssuedAt),
	}
	c.NotBefore = timeOf(wc.NotBefore)
	switch {
	case c.Type == "" || c.Subject == "" || c.Prefix == "":
		return Claims{}, refuse(ReasonMissingClaim, errors.New("typ, sub and pfx are required"))
	case !c.Type.valid():
		return Claims{}, refuse(ReasonWrongType, errors.New("unknown typ "+string(c.Type)))
	case c.MaxKbps < 0:
		return Claims{}, refuse(ReasonMalformed, errors.New("negative mbr"))
	}
	if v.cache != nil {
		until := min(now.Add(v.ttl).UnixNano(), c.Expires.Add(v.leeway).UnixNano())
		v.cache.put(s, entry{claims: c, ks: ks, until: until})
	}
	return checkType(c, want)
}

var (
	errUnknownKID = errors.New("unknown kid")
	errCrit       = errors.New(`unsupported "crit" header`)
)

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.UTC()
}

func checkType(c Claims, want Type) (Claims, error) {
	if c.Type != want {
		return Claims{}, &Error{Reason: ReasonWrongType}
	}
	return c, nil
}

// classify maps a jwt error to a Reason. Order matters: keyfunc errors are
// wrapped in ErrTokenUnverifiable, and the claim errors are joined.
func classify(tok *jwt.Token, err error) Reason {
	switch {
	case errors.Is(err, errUnknownKID):
		return ReasonUnknownKID
	case errors.Is(err, errCrit), errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return ReasonBadAlg // alg missing or not a known algorithm
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if tok != nil && tok.Method != nil && tok.Method.Alg() != jwt.SigningMethodEdDSA.Alg() {
			return ReasonBadAlg // refused by WithValidMethods before any key was used
		}
		return ReasonBadSignature
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ReasonMissingClaim
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ReasonNotYetValid
	}
	return ReasonMalformed
}

// cache remembers verified tokens. It is split into shards, each with two
// generations of map: inserts go to the current one, and when it is full it
// becomes the old one and the previous old one is dropped. So the cache
// holds at most size entries, eviction is O(1), and a token in use is
// re-verified at most once per two generations.
type cache struct {
	seed     maphash.Seed
	shards   []shard
	perShard int
}

type shard struct {
	mu       sync.RWMutex
	cur, old map[string]entry
	_        [64]byte // keep shards' locks on separate cache lines
}

type entry struct {
	claims Claims
	ks     *KeySet // the set the token was verified with
	until  int64   // unix nanoseconds; the entry is stale from then on
}

func newCache(size int) *cache {
	size = max(size, 2)
	n := 1
	if size >= 1024 {
		n = 16
	}
	c := &cache{seed: maphash.MakeSeed(), shards: make([]shard, n), perShard: max(1, size/(2*n))}
	for i := range c.shards {
		c.shards[i].cur = make(map[string]entry)
	}
	return c
}

func (c *cache) shard(key []byte) *shard {
	return &c.shards[maphash.Bytes(c.seed, key)%uint64(len(c.shards))]
}

func (c *cache) get(key []byte, ks *KeySet, now int64) (Claims, bool) {
	sh := c.shard(key)
	sh.mu.RLock()
	e, ok := sh.cur[string(key)]
	if !ok {
		e, ok = sh.old[string(key)]
	}
	sh.mu.RUnlock()
	if !ok || e.ks != ks || now >= e.until {
		return Claims{}, false
	}
	return e.claims, true
}

func (c *cache) put(key string, e entry) {
	sh := &c.shards[maphash.String(c.seed, key)%uint64(len(c.shards))]
	sh.mu.Lock()
	if len(sh.cur) >= c.perShard {
		sh.old, sh.cur = sh.cur, make(map[string]entry, c.perShard)
	}
	sh.cur[key] = e
	sh.mu.Unlock()
}

func (c *cache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.cur, sh.old = make(map[string]entry), nil
		sh.mu.Unlock()
	}
}

// len returns the number of cached entries (for tests).
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.cur) + len(sh.old)
		sh.mu.RUnlock()
	}
	return n
}
