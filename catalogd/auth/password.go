// Package auth holds catalogd's credentials logic, free of HTTP and SQL:
// argon2id password hashes in PHC string format, EdDSA access tokens
// (JWT), opaque refresh tokens stored as SHA-256 hashes, the login rate
// limiter, and TokenCache (verified access tokens; catalogd's reused
// playback tokens).
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters.
type Argon2Params struct {
	MemoryKiB uint32 // memory in KiB
	Time      uint32 // passes
	Threads   uint8  // lanes
}

// OWASPParams returns OWASP's recommendation for argon2id (m=19 MiB, t=2,
// p=1): catalogd's default.
func OWASPParams() Argon2Params { return Argon2Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1} }

const (
	saltLen = 16
	keyLen  = 32
)

// ErrMalformedHash: a stored password hash is not an argon2id PHC string.
var ErrMalformedHash = errors.New("auth: malformed password hash")

// Passwords hashes and verifies passwords with argon2id. Hashing is
// memory-hard on purpose, so at most a few run at once (the rest wait,
// or give up when their context ends): a burst of logins cannot exhaust
// memory. Passwords is safe for concurrent use.
type Passwords struct {
	params Argon2Params
	sem    chan struct{}
	dummy  string              // a hash of a random password, for unknown accounts
	common map[string]struct{} // see Common; read-only
}

// NewPasswords returns a Passwords hashing with params and running at most
// concurrency hashes at once (at least 1).
func NewPasswords(params Argon2Params, concurrency int) (*Passwords, error) {
	if params.MemoryKiB < 8*uint32(params.Threads) || params.Time < 1 || params.Threads < 1 {
		return nil, fmt.Errorf("auth: argon2 parameters m=%d KiB t=%d p=%d: need t ≥ 1, p ≥ 1, m ≥ 8·p",
			params.MemoryKiB, params.Time, params.Threads)
	}
	p := &Passwords{params: params, sem: make(chan struct{}, max(1, concurrency)), common: newCommonSet()}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	p.dummy = p.encode(b[:16], argon2.IDKey(b[:], b[:16], params.Time, params.MemoryKiB, params.Threads, keyLen), params)
	return p, nil
}

// Hash returns the PHC string of password:
// $argon2id$v=19$m=…,t=…,p=…$salt$hash (unpadded standard base64).
func (p *Passwords) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	if err := p.acquire(ctx); err != nil {
		return "", err
	}
	defer p.release()
	key := argon2.IDKey([]byte(password), salt, p.params.Time, p.params.MemoryKiB, p.params.Threads, keyLen)
	return p.encode(salt, key, p.params), nil
}

// Verify reports whether password matches the PHC string phc, comparing in
// constant time. rehash is true when phc was made with parameters other
// than the current ones (the caller may store a fresh Hash).
func (p *Passwords) Verify(ctx context.Context, password, phc string) (ok, rehash bool, err error) {
	params, salt, want, err := decode(phc)
	if err != nil {
		// Spend the usual time anyway: a broken or placeholder hash must not
		// be told apart from a wrong password by timing.
		p.VerifyDummy(ctx, password)
		return false, false, err
	}
	if err := p.acquire(ctx); err != nil {
		return false, false, err
	}
	defer p.release()
	got := argon2.IDKey([]byte(password), salt, params.Time, params.MemoryKiB, params.Threads, uint32(len(want)))
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && params != p.params, nil
}

// VerifyDummy spends the time of a real verification and returns false. Use
// it when the account does not exist, so that "no such user" and "wrong
// password" take as long as each other.
func (p *Passwords) VerifyDummy(ctx context.Context, password string) bool {
	params, salt, want, _ := decode(p.dummy)
	if err := p.acquire(ctx); err != nil {
		return false
	}
	defer p.release()
	got := argon2.IDKey([]byte(password), salt, params.Time, params.MemoryKiB, params.Threads, uint32(len(want)))
	subtle.ConstantTimeCompare(got, want)
	return false
}

func (p *Passwords) acquire(ctx context.Context) error {
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *Passwords) release() { <-p.sem }

var b64 = base64.RawStdEncoding

func (p *Passwords) encode(salt, key []byte, params Argon2Params) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		params.MemoryKiB, params.Time, params.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// decode parses an argon2id PHC string. It bounds the parameters so that a
// tampered hash cannot make verification allocate gigabytes.
func decode(phc string) (params Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return params, nil, nil, ErrMalformedHash
	}
	for kv := range strings.SplitSeq(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return params, nil, nil, ErrMalformedHash
		}
		switch k {
		case "m":
			params.MemoryKiB = uint32(n)
		case "t":
			params.Time = uint32(n)
		case "p":
			if n > 255 {
				return params, nil, nil, ErrMalformedHash
			}
			params.Threads = uint8(n)
		default:
			return params, nil, nil, ErrMalformedHash
		}
	}
	if params.Time < 1 || params.Time > 64 || params.Threads < 1 || params.MemoryKiB < 8*uint32(params.Threads) || params.MemoryKiB > 1<<20 {
		return params, nil, nil, ErrMalformedHash
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return params, nil, nil, ErrMalformedHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return params, nil, nil, ErrMalformedHash
	}
	return params, salt, key, nil
}
