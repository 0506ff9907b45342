package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/httprange"
)

// Fallback across regions: an origin may name another region's origin
// (-fallback) to read from when its own store does not have an object yet
// (replication lag: the catalog only names a region once it holds a
// version, but an old edge URL, a slow replication cursor or a repair may
// still ask) or cannot answer at all (the store is down). Only published
// keys (blobkey.Root) go there, never originals; a request that came from
// another origin's fallback (HeaderFallbackHop) never falls back again, so
// two origins naming each other cannot loop; the fallback origin's answer
// headers must come within the timeout; and the answer carries
// HeaderFallback, so edges' logs and tests can see it.

// Headers of the fallback.
const (
	// HeaderFallback marks an answer the origin got from its fallback.
	HeaderFallback = "X-Riff-Origin-Fallback"
	// HeaderFallbackHop marks a request sent to a fallback origin.
	HeaderFallbackHop = "X-Riff-Fallback-Hop"
)

// Fallback reads objects from another region's origin over HTTP. It is
// safe for concurrent use.
type Fallback struct {
	base   string
	secret string
	client *http.Client
}

// NewFallback returns a Fallback to the origin at base (http(s)://host:port),
// sending secret in HeaderSecret when set; timeout bounds the wait for the
// answer's headers (the body is bounded by the request's store timeout).
func NewFallback(base, secret string, timeout time.Duration) (*Fallback, error) {
	base = strings.TrimSuffix(strings.TrimSpace(base), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("origin: fallback %q: want http(s)://host:port of another region's origin", base)
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 32
	return &Fallback{base: base, secret: secret, client: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

// Close closes idle connections.
func (f *Fallback) Close() { f.client.CloseIdleConnections() }

// get fetches key, or rng of it, from the fallback origin. Info describes
// the whole object, as blob.Store.Get's does.
func (f *Fallback) get(ctx context.Context, key string, rng *blob.Range, head bool) (io.ReadCloser, blob.Info, error) {
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	req, err := http.NewRequestWithContext(ctx, method, f.base+"/"+key, nil)
	if err != nil {
		return nil, blob.Info{}, err
	}
	req.Header.Set(HeaderFallbackHop, "1")
	if f.secret != "" {
		req.Header.Set(HeaderSecret, f.secret)
	}
	if rng != nil {
		v := "bytes=" + strconv.FormatInt(rng.Off, 10) + "-"
		if rng.Len > 0 {
			v += strconv.FormatInt(rng.Off+rng.Len-1, 10)
		}
		req.Header.Set("Range", v)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, blob.Info{}, fmt.Errorf("fallback origin: %w", err)
	}
	info := blob.Info{Key: key, ETag: resp.Header.Get("ETag"), ContentType: resp.Header.Get("Content-Type")}
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		info.ModTime = lm
	}
	switch resp.StatusCode {
	case http.StatusOK:
		info.Size = resp.ContentLength
		if rng != nil && !head {
			// A whole answer to a ranged ask: cut it here.
			resp.Body.Close()
			return nil, blob.Info{}, errors.New("fallback origin ignored the range")
		}
	case http.StatusPartialContent:
		cr, ok := httprange.ParseContentRange([]byte(resp.Header.Get("Content-Range")))
		if !ok || cr.Unsatisfied() {
			resp.Body.Close()
			return nil, blob.Info{}, errors.New("fallback origin: a 206 without a valid Content-Range")
		}
		info.Size = cr.Size
	case http.StatusNotFound:
		resp.Body.Close()
		return nil, blob.Info{}, blob.ErrNotFound
	case http.StatusRequestedRangeNotSatisfiable:
		resp.Body.Close()
		return nil, blob.Info{}, blob.ErrInvalidRange
	default:
		resp.Body.Close()
		return nil, blob.Info{}, fmt.Errorf("fallback origin answered %s", resp.Status)
	}
	if info.Size < 0 {
		resp.Body.Close()
		return nil, blob.Info{}, errors.New("fallback origin sent no length")
	}
	if head {
		resp.Body.Close()
		return nil, info, nil
	}
	return resp.Body, info, nil
}

// fallbackMark travels in a request's store context: whether the request
// may fall back, and whether it did.
type fallbackMark struct {
	allowed bool
	used    bool
}

type markKey struct{}

func withMark(ctx context.Context, m *fallbackMark) context.Context {
	return context.WithValue(ctx, markKey{}, m)
}

// fallbackFor returns the request's mark when a store error err on key may
// be answered by the fallback origin: a missing object or a store that
// failed, not a bad key or range, and not a request past its deadline.
func (s *Server) fallbackFor(ctx context.Context, key string, err error) *fallbackMark {
	if s.cfg.Fallback == nil || err == nil || !strings.HasPrefix(key, blobkey.Root) {
		return nil
	}
	m, _ := ctx.Value(markKey{}).(*fallbackMark)
	if m == nil || !m.allowed || ctx.Err() != nil ||
		errors.Is(err, blob.ErrInvalidKey) || errors.Is(err, blob.ErrInvalidRange) {
		return nil
	}
	return m
}

// tryFallback answers a failed store call from the fallback origin when
// fallbackFor allows it; otherwise, or when the fallback fails too, it
// returns the store's error (a fallback's not-found stays not found).
func (s *Server) tryFallback(ctx context.Context, key string, rng *blob.Range, head bool, err error) (io.ReadCloser, blob.Info, error) {
	m := s.fallbackFor(ctx, key, err)
	if m == nil {
		return nil, blob.Info{}, err
	}
	rc, info, ferr := s.cfg.Fallback.get(ctx, key, rng, head)
	switch {
	case ferr == nil:
		m.used = true
		s.fallbackServed.Inc()
		return rc, info, nil
	case errors.Is(ferr, blob.ErrNotFound) || errors.Is(ferr, blob.ErrInvalidRange):
		if errors.Is(err, blob.ErrNotFound) {
			return nil, blob.Info{}, ferr
		}
		// The local store failed and the fallback does not have it
		// either: the local failure is the answer (503, edges retry).
		s.fallbackFailed.Inc()
		return nil, blob.Info{}, err
	default:
		s.fallbackFailed.Inc()
		s.obs.Logger.WarnContext(ctx, "fallback origin failed", "key", key, "err", ferr, "store_err", err)
		return nil, blob.Info{}, err
	}
}
