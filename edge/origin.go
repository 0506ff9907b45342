package edge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"riff/edge/cache"
	"riff/internal/blobkey"
	"riff/internal/httprange"
	"riff/internal/obs"
)

// Errors of the upstream. The handler maps them to statuses in one place
// (statusOf).
var (
	// errNotFound: the origin has no such object (404).
	errNotFound = errors.New("edge: origin: not found")
	// errUnavailable: no origin could answer (all failed, or all breakers
	// are open).
	errUnavailable = errors.New("edge: origin unavailable")
	// errTimeout: the last origin tried timed out.
	errTimeout = errors.New("edge: origin timeout")
	// errBadOrigin: an origin answered something the edge cannot use (a
	// 4xx other than 404/416, a malformed Content-Range, a short body).
	errBadOrigin = errors.New("edge: bad origin response")
)

// OriginResponse is an origin's answer to one fetch.
type OriginResponse struct {
	// Status is 200 (the whole object), 206 (the requested range) or 416
	// (the range starts past the end; Body is empty, Meta.Size is set).
	Status int
	// Start is the object offset of Body's first byte.
	Start int64
	// Body is owned by the caller.
	Body []byte
	// Meta describes the whole object.
	Meta cache.Meta
}

// Upstream is what the edge needs from its origins. Fetch gets bytes
// [start, end] of key (inclusive; the origin cuts a range that runs past
// the end), or the whole object when end < 0. It must honour ctx.
type Upstream interface {
	Fetch(ctx context.Context, key string, start, end int64) (OriginResponse, error)
	// Ready reports an error when no origin can be expected to answer.
	Ready(ctx context.Context) error
}

// OriginConfig tunes Origins.
type OriginConfig struct {
	// URLs are the origins in order of preference: the primary first,
	// then the fallbacks. Each is http(s)://host:port.
	URLs []string
	// Secret, when set, is sent as X-Riff-Origin-Secret.
	Secret string
	// Timeout bounds one attempt at one origin (connect, send, receive).
	Timeout time.Duration
	// MaxConns caps connections per origin.
	MaxConns int
	// BreakerFailures consecutive failures open an origin's breaker for
	// BreakerCooldown.
	BreakerFailures int
	BreakerCooldown time.Duration
	// MaxBodyBytes caps one response body.
	MaxBodyBytes int
}

// OriginSecretHeader carries the shared secret the origin may demand.
const OriginSecretHeader = "X-Riff-Origin-Secret"

// Origins fetches objects from an ordered list of origins with per-attempt
// timeouts, a circuit breaker per origin and failover: a connection error,
// a timeout or a 5xx moves on to the next origin whose breaker allows it.
// Origins is safe for concurrent use.
type Origins struct {
	list    []*originConn
	secret  string
	timeout time.Duration
	obs     *obs.Obs // spans of origin fetches, traceparent on the request
}

type originConn struct {
	name    string // host:port, the metrics label
	host    string
	hc      *fasthttp.HostClient
	breaker *Breaker

	fetches  *metrics.Counter
	bytes    *metrics.Counter
	duration *metrics.PrometheusHistogram
	errConn  *metrics.Counter
	errTime  *metrics.Counter
	err5xx   *metrics.Counter
	errBad   *metrics.Counter
}

// NewOrigins builds the origin client. It does not connect.
func NewOrigins(o *obs.Obs, cfg OriginConfig, now func() time.Time) (*Origins, error) {
	if err := checkOriginURLs(cfg.URLs); err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 512
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = 5 * time.Second
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 20
	}
	ups := &Origins{secret: cfg.Secret, timeout: cfg.Timeout, obs: o}
	for _, raw := range cfg.URLs {
		u, host, _ := parseOriginURL(raw) // checked above
		timeout := cfg.Timeout
		oc := &originConn{
			name: host,
			host: u.Host,
			hc: &fasthttp.HostClient{
				Addr:                      host,
				IsTLS:                     u.Scheme == "https",
				Name:                      "riff-edge",
				MaxConns:                  cfg.MaxConns,
				MaxConnWaitTimeout:        timeout,
				MaxIdleConnDuration:       30 * time.Second,
				MaxIdemponentCallAttempts: 2, // a stale keep-alive connection
				ReadTimeout:               timeout,
				WriteTimeout:              timeout,
				MaxResponseBodySize:       cfg.MaxBodyBytes,
				DisablePathNormalizing:    true,
				ReadBufferSize:            16 << 10,
			},
			breaker: NewBreaker(cfg.BreakerFailures, cfg.BreakerCooldown, now),
		}
		lbl := fmt.Sprintf(`origin=%q`, host)
		set := o.Metrics
		oc.fetches = set.NewCounter(`riff_edge_origin_fetches_total{` + lbl + `}`)
		oc.bytes = set.NewCounter(`riff_edge_origin_bytes_total{` + lbl + `}`)
		oc.duration = obs.Latency(set, `riff_edge_origin_fetch_duration_seconds{`+lbl+`}`)
		oc.errConn = set.NewCounter(`riff_edge_origin_errors_total{` + lbl + `,kind="connect"}`)
		oc.errTime = set.NewCounter(`riff_edge_origin_errors_total{` + lbl + `,kind="timeout"}`)
		oc.err5xx = set.NewCounter(`riff_edge_origin_errors_total{` + lbl + `,kind="5xx"}`)
		oc.errBad = set.NewCounter(`riff_edge_origin_errors_total{` + lbl + `,kind="bad_response"}`)
		br := oc.breaker
		set.NewGauge(`riff_edge_origin_breaker_state{`+lbl+`}`, func() float64 { return float64(br.State()) })
		ups.list = append(ups.list, oc)
	}
	return ups, nil
}

// checkOriginURLs checks a list of origin URLs as NewOrigins takes them:
// at least one, each http(s)://host[:port] with nothing after the host, no
// host:port twice. It builds nothing, so Run checks -origin before starting.
func checkOriginURLs(urls []string) error {
	if len(urls) == 0 {
		return errors.New("edge: no origin")
	}
	seen := map[string]bool{}
	for _, raw := range urls {
		_, host, err := parseOriginURL(raw)
		if err != nil {
			return err
		}
		if seen[host] {
			return fmt.Errorf("edge: origin %q listed twice", raw)
		}
		seen[host] = true
	}
	return nil
}

// parseOriginURL parses one origin URL and returns it with the host:port
// to dial (the scheme's port when the URL names none).
func parseOriginURL(raw string) (u *url.URL, host string, err error) {
	u, err = url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return nil, "", fmt.Errorf("edge: origin %q: want http(s)://host:port", raw)
	}
	host = u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	return u, host, nil
}

// Breakers returns each origin's name and breaker, in order.
func (u *Origins) Breakers() (names []string, breakers []*Breaker) {
	for _, oc := range u.list {
		names = append(names, oc.name)
		breakers = append(breakers, oc.breaker)
	}
	return names, breakers
}

// Ready implements Upstream: it probes every origin at once (HEAD of a key
// that is never published, with the shared secret) and is ready when at
// least one answers as a healthy origin does: 404, the object is not there
// but its store was asked. A refused secret (403), a 5xx, a timeout or a
// refused connection count against that origin; the error names each
// origin's problem. Breakers are not consulted: a probe that succeeds says
// more than a breaker still cooling down.
func (u *Origins) Ready(ctx context.Context) error {
	errs := make([]error, len(u.list))
	var wg sync.WaitGroup
	for i, oc := range u.list {
		wg.Go(func() { errs[i] = u.probe(ctx, oc) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return errors.Join(errs...)
}

// request returns a request to oc with its host, method and the secret
// set, a response, and the timeout of one attempt within ctx. The caller
// releases both.
func (u *Origins) request(ctx context.Context, oc *originConn, method string) (*fasthttp.Request, *fasthttp.Response, time.Duration) {
	timeout := u.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	req := fasthttp.AcquireRequest()
	req.Header.SetHost(oc.host)
	req.Header.SetMethod(method)
	if u.secret != "" {
		req.Header.SetCanonical(hSecret, []byte(u.secret))
	}
	return req, fasthttp.AcquireResponse(), timeout
}

// probeKey is under the published prefix, and never published (blob keys
// of songs are artists/{id}/albums/…).
const probeKey = "/" + blobkey.Root + "_edge_readyz"

func (u *Origins) probe(ctx context.Context, oc *originConn) error {
	req, resp, timeout := u.request(ctx, oc, fasthttp.MethodHead)
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(probeKey)
	resp.SkipBody = true
	if err := oc.hc.DoTimeout(req, resp, timeout); err != nil {
		return fmt.Errorf("origin %s: %w", oc.name, err)
	}
	switch status := resp.StatusCode(); status {
	case fasthttp.StatusNotFound:
		return nil
	case fasthttp.StatusForbidden:
		return fmt.Errorf("origin %s refuses the edge's secret (403)", oc.name)
	default:
		return fmt.Errorf("origin %s: probe answered %d, want 404", oc.name, status)
	}
}

// Fetch implements Upstream.
func (u *Origins) Fetch(ctx context.Context, key string, start, end int64) (res OriginResponse, err error) {
	if u.obs.Tracing() {
		var span trace.Span
		ctx, span = u.obs.StartSpan(ctx, "origin fetch", attribute.String("blob.key", key),
			attribute.Int64("range.start", start), attribute.Int64("range.end", end))
		defer func() { obs.EndSpan(span, err) }()
	}
	return u.fetch(ctx, key, start, end)
}

func (u *Origins) fetch(ctx context.Context, key string, start, end int64) (OriginResponse, error) {
	var lastErr error
	tried := false
	for _, oc := range u.list {
		if err := ctx.Err(); err != nil {
			return OriginResponse{}, err
		}
		if !oc.breaker.Allow() {
			continue
		}
		tried = true
		res, err := u.fetchOne(ctx, oc, key, start, end)
		if err == nil || !failover(err) {
			oc.breaker.Success() // it answered, even if with a 404
			return res, err
		}
		oc.breaker.Failure()
		lastErr = err
	}
	if !tried {
		return OriginResponse{}, fmt.Errorf("%w: every circuit breaker is open", errUnavailable)
	}
	if errors.Is(lastErr, errTimeout) {
		return OriginResponse{}, lastErr
	}
	return OriginResponse{}, fmt.Errorf("%w: %w", errUnavailable, lastErr)
}

// failoverError marks errors after which the next origin is tried.
type failoverError struct{ err error }

func (e failoverError) Error() string { return e.err.Error() }
func (e failoverError) Unwrap() error { return e.err }

func failover(err error) bool {
	var fe failoverError
	return errors.As(err, &fe)
}

var (
	hRange        = []byte("Range")
	hContentRange = []byte("Content-Range")
	hETag         = []byte("ETag")
	hLastModified = []byte("Last-Modified")
	hSecret       = []byte(OriginSecretHeader)
)

func (u *Origins) fetchOne(ctx context.Context, oc *originConn, key string, start, end int64) (OriginResponse, error) {
	req, resp, timeout := u.request(ctx, oc, fasthttp.MethodGet)
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	uri := make([]byte, 0, len(key)+1)
	uri = append(append(uri, '/'), key...)
	req.SetRequestURIBytes(uri)
	u.obs.InjectFast(ctx, &req.Header)
	if end >= 0 {
		var b [48]byte
		r := append(b[:0], "bytes="...)
		r = strconv.AppendInt(r, start, 10)
		r = append(r, '-')
		r = strconv.AppendInt(r, end, 10)
		req.Header.SetCanonical(hRange, r)
	}
	began := time.Now()
	oc.fetches.Inc()
	err := oc.hc.DoTimeout(req, resp, timeout)
	oc.duration.UpdateDuration(began)
	if err != nil {
		if errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) || isNetTimeout(err) {
			oc.errTime.Inc()
			return OriginResponse{}, failoverError{fmt.Errorf("%w: %s: %w", errTimeout, oc.name, err)}
		}
		oc.errConn.Inc()
		return OriginResponse{}, failoverError{fmt.Errorf("origin %s: %w", oc.name, err)}
	}
	if status := resp.StatusCode(); status >= 500 {
		oc.err5xx.Inc()
		return OriginResponse{}, failoverError{fmt.Errorf("origin %s: status %d", oc.name, status)}
	}
	out, err := readFetch(resp, oc.name, key, start, end)
	if errors.Is(err, errBadOrigin) {
		oc.errBad.Inc()
	}
	oc.bytes.Add(len(out.Body))
	return out, err
}

// readFetch reads an answer to a fetch of bytes [start, end] of key (the
// whole object when end < 0) as origins and peers give it: 200, 206 with
// a Content-Range that matches, 416 with the size, 404. from names the
// sender in errors.
func readFetch(resp *fasthttp.Response, from, key string, start, end int64) (OriginResponse, error) {
	status := resp.StatusCode()
	if status == fasthttp.StatusNotFound {
		return OriginResponse{}, fmt.Errorf("%w: %s", errNotFound, key)
	}
	out := OriginResponse{Status: status}
	out.Meta.ETag = string(resp.Header.PeekBytes(hETag))
	out.Meta.ContentType = string(resp.Header.ContentType())
	if lm := resp.Header.PeekBytes(hLastModified); len(lm) > 0 {
		out.Meta.LastModified = string(lm)
		out.Meta.Modified, _ = http.ParseTime(out.Meta.LastModified)
	}
	body := resp.Body()
	switch status {
	case fasthttp.StatusOK:
		out.Meta.Size = int64(len(body))
	case fasthttp.StatusPartialContent:
		cr, ok := httprange.ParseContentRange(resp.Header.PeekBytes(hContentRange))
		if !ok || cr.Unsatisfied() || cr.Size < 0 || cr.Length != int64(len(body)) || (end >= 0 && cr.Start != start) {
			return OriginResponse{}, fmt.Errorf("%w: %s: 206 with Content-Range %q and %d bytes", errBadOrigin, from, resp.Header.PeekBytes(hContentRange), len(body))
		}
		out.Start, out.Meta.Size = cr.Start, cr.Size
	case fasthttp.StatusRequestedRangeNotSatisfiable:
		cr, ok := httprange.ParseContentRange(resp.Header.PeekBytes(hContentRange))
		if !ok || !cr.Unsatisfied() {
			return OriginResponse{}, fmt.Errorf("%w: %s: 416 without Content-Range", errBadOrigin, from)
		}
		out.Meta.Size = cr.Size
		return out, nil
	default:
		return OriginResponse{}, fmt.Errorf("%w: %s: status %d", errBadOrigin, from, status)
	}
	out.Body = append([]byte(nil), body...)
	return out, nil
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
