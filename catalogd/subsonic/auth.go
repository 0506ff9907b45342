package subsonic

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"riff/catalogd/store"
)

// DeriveKey derives the key that seals app passwords from one of
// catalogd's keys (Run passes the access-token key, which is derived from
// signing.key): HMAC-SHA256 of a fixed label keyed with the seed, as
// auth.DeriveAccessKey does. Every catalogd with the same signing.key
// derives the same key; rotating signing.key makes the stored app
// passwords unreadable (users generate new ones; API keys, stored hashed,
// keep working).
func DeriveKey(signing ed25519.PrivateKey) []byte {
	mac := hmac.New(sha256.New, signing.Seed())
	mac.Write([]byte("riff catalogd subsonic app-password sealing key v1"))
	return mac.Sum(nil)
}

// sealer seals and opens app passwords with AES-256-GCM; the user id is
// the associated data, so a sealed password moved to another account does
// not open. It is safe for concurrent use.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != 32 {
		return nil, errors.New("subsonic: the sealing key must be 32 bytes")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("subsonic: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("subsonic: %w", err)
	}
	return &sealer{aead}, nil
}

func userAD(userID int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(userID)) }

func (s *sealer) seal(userID int64, password string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(password), userAD(userID))
}

func (s *sealer) open(userID int64, sealed []byte) (string, bool) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", false
	}
	pt, err := s.aead.Open(nil, sealed[:n], sealed[n:], userAD(userID))
	return string(pt), err == nil
}

// apiKeyPrefix starts every API key, so that a leaked one is recognisable
// (secret scanners) and cannot be taken for an app password.
const apiKeyPrefix = "riffsk_"

func randomText(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// Credential is an API key or app password as its owner sees it; Secret
// is set only in the answer that creates it.
type Credential struct {
	ID        int64
	Name      string
	Secret    string
	CreatedAt time.Time
}

// CreateCredential makes an API key (apiKey) or an app password for
// userID, named name (checked by the caller), and returns it with its
// secret: the only time the secret is shown. The error wraps
// store.ErrTooMany when the user holds too many.
func (h *Handler) CreateCredential(ctx context.Context, userID int64, apiKey bool, name string) (Credential, error) {
	var secret string
	var stored []byte
	if apiKey {
		secret = apiKeyPrefix + randomText(32)
		stored = hashAPIKey(secret)
	} else {
		secret = randomText(18) // 24 characters, 144 bits
		stored = h.sealer.seal(userID, secret)
	}
	c, err := h.store.CreateSubsonicCredential(ctx, userID, apiKey, name, stored)
	if err != nil {
		return Credential{}, err
	}
	return Credential{ID: c.ID, Name: c.Name, Secret: secret, CreatedAt: c.CreatedAt}, nil
}

// Credentials lists a user's API keys (apiKey) or app passwords, without
// their secrets.
func (h *Handler) Credentials(ctx context.Context, userID int64, apiKey bool) ([]Credential, error) {
	cs, err := h.store.SubsonicCredentials(ctx, userID, apiKey)
	if err != nil {
		return nil, err
	}
	out := make([]Credential, len(cs))
	for i, c := range cs {
		out[i] = Credential{ID: c.ID, Name: c.Name, CreatedAt: c.CreatedAt}
	}
	return out, nil
}

// RevokeCredential deletes an API key or app password of userID (the
// error wraps store.ErrNotFound when it has none with that id).
func (h *Handler) RevokeCredential(ctx context.Context, userID int64, apiKey bool, id int64) error {
	return h.store.DeleteSubsonicCredential(ctx, userID, apiKey, id)
}

// rateLimited: a login limit is spent.
type rateLimited struct{ retryAfter time.Duration }

func (e *rateLimited) Error() string { return "subsonic: login rate limit spent" }

// authenticate finds the caller of r: by apiKey, or by u with t + s (or
// p when allowed). Exactly one mechanism may be used (error 43).
func (h *Handler) authenticate(r *http.Request) (User, error) {
	f := r.Form
	key, u, t, s, p := f.Get("apiKey"), f.Get("u"), f.Get("t"), f.Get("s"), f.Get("p")
	ip := h.catalog.ClientIP(r)
	switch {
	case key != "" && (u != "" || t != "" || p != ""):
		return User{}, Fail(CodeAuthConflict, "Send either apiKey or u with t and s, not both.")
	case key != "":
		if d := h.blocked.until(ip); d > 0 {
			return User{}, &rateLimited{d}
		}
		usr, err := h.store.UserBySubsonicKey(r.Context(), hashAPIKey(key))
		if errors.Is(err, store.ErrNotFound) {
			return User{}, h.failed(r, ip, "", Fail(CodeInvalidAPIKey, "The API key is not valid."))
		}
		if err != nil {
			return User{}, err
		}
		return newUser(usr), nil
	case u == "":
		return User{}, Fail(CodeMissingParameter, "Required parameter is missing: u (or apiKey).")
	case t != "" && p != "":
		return User{}, Fail(CodeAuthConflict, "Send either t and s or p, not both.")
	case t != "" && s == "":
		return User{}, Fail(CodeMissingParameter, "Required parameter is missing: s.")
	case t == "" && p == "":
		return User{}, Fail(CodeMissingParameter, "Required parameter is missing: t and s (or apiKey).")
	case p != "" && !(h.cfg.AllowPlain && h.catalog.TLS(r)):
		return User{}, Fail(CodeAuthUnsupported, "Plain passwords are not accepted here; use an API key or t and s.")
	}
	account := store.EmailKey(u)
	for _, k := range []string{ip, "u:" + account} {
		if d := h.blocked.until(k); d > 0 {
			return User{}, &rateLimited{d}
		}
	}
	wrong := Fail(CodeWrongCredentials, "Wrong username or password (use an app password from your Riff profile, not your Riff password).")
	usr, err := h.store.UserByEmail(r.Context(), u)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, h.failed(r, ip, account, wrong)
	}
	if err != nil {
		return User{}, err
	}
	if p != "" {
		p = plainPassword(p)
	}
	cs, err := h.store.SubsonicCredentials(r.Context(), usr.ID, false)
	if err != nil {
		return User{}, err
	}
	for _, c := range cs {
		pw, ok := h.sealer.open(usr.ID, c.Secret)
		if !ok {
			continue // sealed under a key since rotated
		}
		if p != "" && subtle.ConstantTimeCompare([]byte(pw), []byte(p)) == 1 {
			return newUser(usr), nil
		}
		if t != "" {
			sum := md5.Sum([]byte(pw + s))
			if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(strings.ToLower(t))) == 1 {
				return newUser(usr), nil
			}
		}
	}
	return User{}, h.failed(r, ip, account, wrong)
}

// plainPassword decodes p=enc:HEX.
func plainPassword(p string) string {
	if rest, ok := strings.CutPrefix(p, "enc:"); ok {
		if b, err := hex.DecodeString(rest); err == nil {
			return string(b)
		}
	}
	return p
}

// failed spends a failed attempt of the client and account; when a limit
// is spent they are blocked until it recovers.
func (h *Handler) failed(r *http.Request, ip, account string, err error) error {
	if d := h.catalog.LimitAttempt(r, account); d > 0 {
		h.blocked.block(ip, d)
		if account != "" {
			h.blocked.block("u:"+account, d)
		}
		return &rateLimited{d}
	}
	return err
}

func newUser(u store.User) User { return User{ID: u.ID, Name: u.Email, Tier: u.Tier, Role: u.Role} }

// blockList remembers clients and accounts whose login limit is spent,
// until it recovers. It holds at most max keys (past that it forgets the
// recovered ones, then all). It is safe for concurrent use.
type blockList struct {
	max int
	now func() time.Time
	mu  sync.Mutex
	m   map[string]time.Time
}

func newBlockList(max int, now func() time.Time) *blockList {
	return &blockList{max: max, now: now, m: map[string]time.Time{}}
}

func (b *blockList) block(key string, d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if len(b.m) >= b.max {
		for k, t := range b.m {
			if !t.After(now) {
				delete(b.m, k)
			}
		}
		if len(b.m) >= b.max {
			clear(b.m)
		}
	}
	b.m[key] = now.Add(d)
}

// until returns how long key stays blocked (0: not blocked).
func (b *blockList) until(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.m[key]
	if !ok {
		return 0
	}
	d := t.Sub(b.now())
	if d <= 0 {
		delete(b.m, key)
		return 0
	}
	return d
}
