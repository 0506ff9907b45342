// Package peer is the edge fleet of one region as seen from one of its
// edges: who owns a slice (rendezvous hashing), how to ask the owner for
// it (a client per peer with a timeout and a circuit breaker), and how an
// owner knows that a request came from a peer (a shared secret).
//
// # Ownership
//
// Every edge of a region is started with the same list of peer URLs (their
// admin listeners) and knows which entry is itself. The owner of slice idx
// of an object is the peer with the highest score hash(peer URL, key, idx)
// (rendezvous or highest-random-weight hashing, Thaler and Ravishankar
// 1998): every edge computes the same owner without talking to the others,
// and when a peer leaves the list only the slices it owned move, each to
// its own next choice, spread over the rest. Rank gives the whole order of
// preference, which is the failover order.
//
// # Wire
//
//	GET /peer/{blob key}?gen={generation}
//	X-Riff-Peer-Secret: {secret}
//	Range: bytes={first slice start}-{last slice end}
//
// answered like the origin answers a Range request (206 with
// Content-Range, ETag, Last-Modified, Content-Type; 416 with "bytes
// */size"; 404), so the edge reads both with the same code. The path is
// what marks the request as a peer's: an owner serves it from its own
// tiers or its origins and never forwards it to another peer (one hop).
// gen is the purge generation of the object at the asking edge; an owner
// whose generation differs (a purge has reached one of them and not yet
// the other) answers 409 and the asker goes to the origin, so a purged
// generation is never served across the fleet. 502 means the owner's
// origins failed; neither 409 nor 502 counts against the peer's breaker.
//
// Fleet is safe for concurrent use. New has no side effects (it connects
// on first use).
package peer

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
)

// Wire names.
const (
	// SecretHeader carries the fleet's shared secret on peer requests.
	SecretHeader = "X-Riff-Peer-Secret"
	// PathPrefix starts the path of a peer request; the blob key follows.
	PathPrefix = "/peer/"
	// GenParam is the query parameter with the asker's generation.
	GenParam = "gen"
)

// Errors of Fetch.
var (
	// ErrOpen: the peer's breaker is open; nothing was sent.
	ErrOpen = errors.New("peer: circuit breaker open")
	// ErrPeer: the peer failed (connection, timeout, 5xx); its breaker
	// counted it.
	ErrPeer = errors.New("peer: failed")
)

// Breaker is what a peer client needs of a circuit breaker (the edge's
// Breaker is one): Allow before a request, then Success or Failure.
type Breaker interface {
	Allow() bool
	Success()
	Failure()
}

// Config describes the fleet.
type Config struct {
	// URLs are the admin URLs (http(s)://host:port) of every edge of the
	// region, this one included, spelled the same on every edge: the
	// hash is of the spelling.
	URLs []string
	// Self is this edge's entry in URLs.
	Self string
	// Secret is the fleet's shared secret, sent and demanded.
	Secret string
	// Timeout bounds one request to one peer. Default 3s.
	Timeout time.Duration
	// MaxConns caps connections per peer. Default 256.
	MaxConns int
	// MaxBodyBytes caps one answer. Default 64 MiB.
	MaxBodyBytes int
	// NewBreaker makes each peer's breaker. Required.
	NewBreaker func() Breaker
	// Metrics, when set, gets per-peer request and error counters.
	Metrics *metrics.Set
}

// Fleet is the region's edges as one edge sees them.
type Fleet struct {
	self    int
	members []*member
	secret  []byte
	timeout time.Duration
}

type member struct {
	name    string // the URL as listed
	seed    uint64 // hash of name
	host    string
	hc      *fasthttp.HostClient
	breaker Breaker

	fetches, errConn, errTime, err5xx *metrics.Counter
}

// CheckURLs checks a peer list and this edge's entry in it without
// building anything (Run checks flags with it).
func CheckURLs(urls []string, self string) error {
	if len(urls) == 0 {
		return errors.New("peer: no peers")
	}
	seen := map[string]bool{}
	found := false
	for _, raw := range urls {
		if _, err := parseURL(raw); err != nil {
			return err
		}
		if seen[raw] {
			return fmt.Errorf("peer: %q listed twice", raw)
		}
		seen[raw] = true
		found = found || raw == self
	}
	if !found {
		return fmt.Errorf("peer: this edge (%q) is not in the peer list", self)
	}
	return nil
}

func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("peer: %q: want http(s)://host:port", raw)
	}
	return u, nil
}

// New builds the fleet's clients. It does not connect.
func New(cfg Config) (*Fleet, error) {
	if err := CheckURLs(cfg.URLs, cfg.Self); err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		return nil, errors.New("peer: a shared secret is required")
	}
	if cfg.NewBreaker == nil {
		return nil, errors.New("peer: Config.NewBreaker is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 256
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	f := &Fleet{secret: []byte(cfg.Secret), timeout: cfg.Timeout}
	for i, raw := range cfg.URLs {
		u, _ := parseURL(raw) // checked
		addr := u.Host
		if u.Port() == "" {
			port := "80"
			if u.Scheme == "https" {
				port = "443"
			}
			addr = net.JoinHostPort(u.Hostname(), port)
		}
		m := &member{
			name: raw, seed: hashString(raw), host: u.Host,
			hc: &fasthttp.HostClient{
				Addr:                      addr,
				IsTLS:                     u.Scheme == "https",
				Name:                      "riff-edge-peer",
				MaxConns:                  cfg.MaxConns,
				MaxConnWaitTimeout:        cfg.Timeout,
				MaxIdleConnDuration:       30 * time.Second,
				MaxIdemponentCallAttempts: 2,
				ReadTimeout:               cfg.Timeout,
				WriteTimeout:              cfg.Timeout,
				MaxResponseBodySize:       cfg.MaxBodyBytes,
				DisablePathNormalizing:    true,
			},
			breaker: cfg.NewBreaker(),
		}
		if raw == cfg.Self {
			f.self = i
		}
		set := cfg.Metrics
		if set == nil {
			set = metrics.NewSet()
		}
		lbl := fmt.Sprintf(`peer=%q`, u.Host)
		m.fetches = set.GetOrCreateCounter(`riff_edge_peer_fetches_total{` + lbl + `}`)
		m.errConn = set.GetOrCreateCounter(`riff_edge_peer_errors_total{` + lbl + `,kind="connect"}`)
		m.errTime = set.GetOrCreateCounter(`riff_edge_peer_errors_total{` + lbl + `,kind="timeout"}`)
		m.err5xx = set.GetOrCreateCounter(`riff_edge_peer_errors_total{` + lbl + `,kind="5xx"}`)
		f.members = append(f.members, m)
	}
	return f, nil
}

// Len is the number of edges in the fleet, this one included.
func (f *Fleet) Len() int { return len(f.members) }

// Self is this edge's index.
func (f *Fleet) Self() int { return f.self }

// Name is peer i's URL as listed.
func (f *Fleet) Name(i int) string { return f.members[i].name }

// Breaker is peer i's circuit breaker.
func (f *Fleet) Breaker(i int) Breaker { return f.members[i].breaker }

// Rank puts into dst (reused, returned) the indexes of every edge in order
// of preference for slice idx of key: the owner first. It does not
// allocate when dst has room.
func (f *Fleet) Rank(key string, idx int64, dst []int) []int {
	h := hashSlice(key, idx)
	dst = dst[:0]
	for i := range f.members {
		dst = append(dst, i)
	}
	score := func(i int) uint64 { return score(h, f.members[i].seed) }
	// Insertion sort by descending score: fleets are small.
	for i := 1; i < len(dst); i++ {
		for j := i; j > 0 && score(dst[j]) > score(dst[j-1]); j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst
}

// Owner is the index of the edge that owns slice idx of key.
func (f *Fleet) Owner(key string, idx int64) int {
	h := hashSlice(key, idx)
	best, bestScore := 0, uint64(0)
	for i, m := range f.members {
		if s := score(h, m.seed); i == 0 || s > bestScore {
			best, bestScore = i, s
		}
	}
	return best
}

// Authorized reports whether a request's SecretHeader value is the
// fleet's secret (compared in constant time).
func (f *Fleet) Authorized(secret []byte) bool {
	return len(secret) > 0 && subtle.ConstantTimeCompare(secret, f.secret) == 1
}

// Fetch asks peer i for bytes [start, end] of key at generation gen and
// leaves the answer in resp (which the caller acquired and releases) for
// the caller to read as it reads an origin's. It returns ErrOpen without
// sending when the peer's breaker is open, and an error wrapping ErrPeer
// when the peer failed (no answer in time, or a 5xx other than 502); a 502
// (the owner's origins failed) and every other status are answers.
func (f *Fleet) Fetch(ctx context.Context, i int, key string, gen uint64, start, end int64, resp *fasthttp.Response) error {
	m := f.members[i]
	if !m.breaker.Allow() {
		return ErrOpen
	}
	timeout := f.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetHost(m.host)
	req.Header.SetMethod(fasthttp.MethodGet)
	req.Header.Set(SecretHeader, string(f.secret))
	req.SetRequestURI(Path(key, gen))
	req.Header.Set("Range", "bytes="+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(end, 10))
	m.fetches.Inc()
	err := m.hc.DoTimeout(req, resp, timeout)
	switch {
	case err != nil && (errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || isNetTimeout(err)):
		m.errTime.Inc()
		m.breaker.Failure()
		return fmt.Errorf("%w: %s: timeout: %w", ErrPeer, m.name, err)
	case err != nil:
		m.errConn.Inc()
		m.breaker.Failure()
		return fmt.Errorf("%w: %s: %w", ErrPeer, m.name, err)
	case resp.StatusCode() >= 500 && resp.StatusCode() != fasthttp.StatusBadGateway:
		m.err5xx.Inc()
		m.breaker.Failure()
		return fmt.Errorf("%w: %s: status %d", ErrPeer, m.name, resp.StatusCode())
	}
	m.breaker.Success()
	return nil
}

// Path is the request path of a peer fetch of key at generation gen.
func Path(key string, gen uint64) string {
	return PathPrefix + key + "?" + GenParam + "=" + strconv.FormatUint(gen, 10)
}

// ParseRequest reads a peer request's key (still to be validated) and
// generation from its path and query.
func ParseRequest(path []byte, args *fasthttp.Args) (key string, gen uint64, ok bool) {
	rest, found := strings.CutPrefix(string(path), PathPrefix)
	if !found || rest == "" {
		return "", 0, false
	}
	gen, err := strconv.ParseUint(string(args.Peek(GenParam)), 10, 64)
	if err != nil {
		return "", 0, false
	}
	return rest, gen, true
}

// IsRequest reports whether path is a peer request's.
func IsRequest(path []byte) bool {
	return len(path) > len(PathPrefix) && string(path[:len(PathPrefix)]) == PathPrefix
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// hashString and hashSlice use xxHash64: the same on every edge and every
// architecture, unlike maphash, whose seed is per process.
func hashString(s string) uint64 { return xxhash.Sum64String(s) }

func hashSlice(key string, idx int64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], xxhash.Sum64String(key))
	binary.LittleEndian.PutUint64(b[8:], uint64(idx))
	return xxhash.Sum64(b[:])
}

// score is member seed's score for a slice whose hash is h.
func score(h, seed uint64) uint64 {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], h)
	binary.LittleEndian.PutUint64(b[8:], seed)
	return xxhash.Sum64(b[:])
}
