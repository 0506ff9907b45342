package bench

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"riff/internal/httprange"
)

// Error kinds, as counted in Report.ErrorsByKind (plus "http_NNN" for an
// unexpected status).
const (
	ErrTimeout      = "timeout"       // no complete answer within -timeout
	ErrConnection   = "connection"    // refused, reset, closed early
	ErrContentRange = "content_range" // 206 with another range than asked, or 200 to a range
	ErrLength       = "length"        // body length differs from what the headers promise
	ErrTooLarge     = "too_large"     // body above the client's cap
	ErrPlaylist     = "playlist"      // a playlist that does not parse
	ErrAPI          = "api"           // catalogd answered something unusable
)

// maxBody caps a response body (a byte range is a few hundred KiB; a
// whole rendition a few MiB).
const maxBody = 256 << 20

// Client sends GET requests over keep-alive connection pools, one
// fasthttp.HostClient per scheme and host. It is safe for concurrent use;
// each goroutine sends through its own Conn.
type Client struct {
	timeout  time.Duration
	maxConns int

	mu    sync.RWMutex
	hosts map[string]*fasthttp.HostClient
}

// NewClient returns a Client whose requests time out after timeout and
// that opens at most maxConns connections per host.
func NewClient(timeout time.Duration, maxConns int) *Client {
	return &Client{timeout: timeout, maxConns: maxConns, hosts: map[string]*fasthttp.HostClient{}}
}

func (c *Client) host(scheme, host []byte) *fasthttp.HostClient {
	c.mu.RLock()
	hc := c.hosts[string(host)]
	c.mu.RUnlock()
	if hc != nil && hc.IsTLS == bytes.Equal(scheme, []byte("https")) {
		return hc
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	tls := bytes.Equal(scheme, []byte("https"))
	addr := string(host)
	if _, _, err := net.SplitHostPort(addr); err != nil {
		if tls {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	hc = &fasthttp.HostClient{
		Addr:                      addr,
		IsTLS:                     tls,
		Name:                      "riff-bench",
		MaxConns:                  c.maxConns,
		MaxConnWaitTimeout:        c.timeout,
		MaxIdleConnDuration:       time.Minute,
		MaxIdemponentCallAttempts: 1, // a retry would hide a failure
		ReadTimeout:               c.timeout,
		WriteTimeout:              c.timeout,
		MaxResponseBodySize:       maxBody,
		ReadBufferSize:            16 << 10,
		DisablePathNormalizing:    true,
	}
	c.hosts[string(host)] = hc
	return hc
}

// Close closes idle connections.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, hc := range c.hosts {
		hc.CloseIdleConnections()
	}
}

// Conn is one goroutine's request and response, reused from request to
// request so that a warm request allocates nothing. A Conn is not safe for
// concurrent use.
type Conn struct {
	c    *Client
	req  *fasthttp.Request
	resp *fasthttp.Response
	rng  []byte
}

// NewConn returns a Conn sending through c.
func (c *Client) NewConn() *Conn {
	return &Conn{c: c, req: &fasthttp.Request{}, resp: &fasthttp.Response{}}
}

// Result is the outcome of one request. Body is valid until the Conn's
// next request.
type Result struct {
	Status int
	Bytes  int64
	Cache  CacheStatus
	Err    string // "" when the answer is what was asked for
	Body   []byte
}

// Get fetches url (the byte range r, unless r.Last < 0) with the extra
// header auth ("" for none) as the Authorization value, and checks the
// answer: a 2xx, for a range a 206 whose Content-Range is the range asked
// for, and a body as long as the headers say.
func (c *Conn) Get(url string, r Range, auth string) Result {
	req, resp := c.req, c.resp
	req.Reset()
	req.SetRequestURI(url)
	req.URI().DisablePathNormalizing = true
	if r.Last >= 0 {
		c.rng = append(c.rng[:0], "bytes="...)
		c.rng = strconv.AppendInt(c.rng, r.First, 10)
		c.rng = append(c.rng, '-')
		c.rng = strconv.AppendInt(c.rng, r.Last, 10)
		req.Header.SetBytesV("Range", c.rng)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	uri := req.URI()
	hc := c.c.host(uri.Scheme(), uri.Host())
	err := hc.Do(req, resp)
	body := resp.Body()
	res := Result{Status: resp.StatusCode(), Bytes: int64(len(body)), Body: body}
	if err != nil {
		res.Status, res.Err = 0, errKind(err)
		return res
	}
	res.Cache = cacheStatus(resp.Header.Peek("X-Cache"))
	if cl := resp.Header.ContentLength(); cl >= 0 && int64(cl) != res.Bytes {
		res.Err = ErrLength
		return res
	}
	switch {
	case res.Status == fasthttp.StatusPartialContent && r.Last >= 0:
		cr, ok := httprange.ParseContentRange(resp.Header.Peek("Content-Range"))
		if !ok || cr.Unsatisfied() || cr.Start != r.First || cr.End() != r.Last {
			res.Err = ErrContentRange
		} else if res.Bytes != r.Len() {
			res.Err = ErrLength
		}
	case res.Status == fasthttp.StatusOK && r.Last >= 0:
		res.Err = ErrContentRange // the range was ignored
	case res.Status < 200 || res.Status > 299:
		res.Err = "http_" + strconv.Itoa(res.Status)
	}
	return res
}

// errKind classifies a transport error.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, fasthttp.ErrNoFreeConns), errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return ErrTooLarge
	default:
		return ErrConnection
	}
}

// fetch is Get plus bookkeeping: the answer is recorded under kind k with
// its latency since start (the scheduled send time in the flat scenario).
func (c *Conn) fetch(rec *Recorder, k Kind, url string, r Range, auth string, start time.Time) Result {
	res := c.Get(url, r, auth)
	lat := time.Since(start)
	if res.Err != "" {
		rec.Error(res.Err, res.Bytes, lat)
	} else {
		rec.Request(k, res.Cache, res.Bytes, lat)
	}
	return res
}
