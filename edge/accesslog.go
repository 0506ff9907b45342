package edge

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// AccessLog writes one JSON line per public request (`-access-log`):
//
//	{"time":"…","client":"192.0.2.1","forwarded_for":"…","method":"GET",
//	 "key":"artists/…/aac_128.mp4","range":"bytes=0-99","status":206,
//	 "cache":"HIT","sub":"user","bytes":100,"ttfb_us":41,"dur_us":57}
//
// time is when the request's handling started; client the peer's
// address, and forwarded_for the X-Forwarded-For header only when that
// peer is one of the trusted proxies; key the blob key as requested —
// never the token; range the Range header as sent; cache X-Cache (empty
// for answers that have none, such as refusals); sub the token's subject
// (empty when the token was refused: a refusal for the key's prefix or
// tier still names the holder of a valid token); bytes the body bytes
// sent; ttfb_us the time until the answer's head was ready to go (the
// handler returned; the head leaves with the body's first write); dur_us
// until the body was sent. Times are measured with three clock reads per
// request.
//
// Lines are formatted on the request's goroutine and appended, under a
// mutex, to a pending buffer; one writer goroutine takes the whole buffer
// every 100 ms (or as soon as it holds 64 KiB) and writes it with one
// system call. When the pending buffer is full (the writer is stuck on a
// slow disk) lines are dropped and counted, so a slow or stuck log never
// slows or blocks serving. Reopen (SIGHUP, for logrotate) makes the writer
// close and reopen its file. An AccessLog is safe for concurrent use.
type AccessLog struct {
	open    func() (io.WriteCloser, error)
	trusted []netip.Prefix
	now     func() time.Time
	limit   int // pending bytes

	mu      sync.Mutex
	pending []byte
	nlines  int64 // lines in pending

	kick    chan struct{}
	reopen  chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	pool    sync.Pool

	lines, dropped, errs atomic.Int64
}

// AccessLogStats are an AccessLog's counters: lines written, dropped, and
// lost to write errors.
type AccessLogStats struct {
	Lines, Dropped, Errors int64
}

// flushBytes is how much pending log makes the writer go before its tick.
const flushBytes = 64 << 10

// NewAccessLog returns an access log that writes to what open returns
// (opened at once, and again on Reopen), trusting X-Forwarded-For from the
// trusted prefixes, keeping up to maxPending bytes of lines waiting for the
// writer (default 4 MiB). It starts the writer.
func NewAccessLog(open func() (io.WriteCloser, error), trusted []netip.Prefix, maxPending int, now func() time.Time) (*AccessLog, error) {
	if now == nil {
		now = time.Now
	}
	if maxPending <= 0 {
		maxPending = 4 << 20
	}
	w, err := open()
	if err != nil {
		return nil, fmt.Errorf("edge: access log: %w", err)
	}
	l := &AccessLog{open: open, trusted: trusted, now: now, limit: maxPending,
		kick: make(chan struct{}, 1), reopen: make(chan struct{}, 1),
		done: make(chan struct{}), stopped: make(chan struct{})}
	l.pool.New = func() any { b := make([]byte, 0, 512); return &b }
	go l.writer(w)
	return l, nil
}

// AccessLogFile returns an opener for NewAccessLog: "-" is stdout (never
// closed), anything else a file opened for appending.
func AccessLogFile(path string, stdout io.Writer) func() (io.WriteCloser, error) {
	if path == "-" {
		return func() (io.WriteCloser, error) { return nopCloser{stdout}, nil }
	}
	return func() (io.WriteCloser, error) {
		return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// Reopen asks the writer to close and reopen its file (after logrotate
// moved it). It does not wait.
func (l *AccessLog) Reopen() {
	select {
	case l.reopen <- struct{}{}:
	default:
	}
}

// Close writes what is pending, closes the file and stops the writer; it
// gives up waiting after 5 s (a writer stuck in a hung file system is left
// behind). It is idempotent. Lines logged after it are dropped.
func (l *AccessLog) Close() {
	l.once.Do(func() {
		close(l.done)
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-l.stopped:
		case <-t.C:
		}
	})
}

// Stats returns the counters.
func (l *AccessLog) Stats() AccessLogStats {
	return AccessLogStats{Lines: l.lines.Load(), Dropped: l.dropped.Load(), Errors: l.errs.Load()}
}

func (l *AccessLog) writer(w io.WriteCloser) {
	defer close(l.stopped)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var spare []byte
	flush := func() {
		l.mu.Lock()
		b, n := l.pending, l.nlines
		l.pending, l.nlines = spare[:0], 0
		l.mu.Unlock()
		if len(b) > 0 {
			if w == nil {
				l.errs.Add(n)
			} else if _, err := w.Write(b); err != nil {
				l.errs.Add(n)
			} else {
				l.lines.Add(n)
			}
		}
		spare = b
	}
	for {
		select {
		case <-tick.C:
			flush()
		case <-l.kick:
			flush()
		case <-l.reopen:
			flush()
			if w != nil {
				w.Close()
			}
			var err error
			if w, err = l.open(); err != nil {
				l.errs.Add(1)
				w = nil // lines count as errors until a reopen works
			}
		case <-l.done:
			flush()
			if w != nil {
				w.Close()
			}
			return
		}
	}
}

// pendingLog is a line begun when the handler returned and finished when
// the body has been sent (see body.Close).
type pendingLog struct {
	l     *AccessLog
	buf   *[]byte
	start time.Time
	ready time.Time // the handler returned: the head was ready
}

// begin formats what is known when the handler returns: everything but
// the bytes sent and the times.
func (l *AccessLog) begin(ctx *fasthttp.RequestCtx, start time.Time, sub string) *[]byte {
	bp := l.pool.Get().(*[]byte)
	b := append((*bp)[:0], `{"time":"`...)
	b = start.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","client":"`...)
	ip := netip.Addr{}
	if a, ok := netip.AddrFromSlice(ctx.RemoteIP()); ok {
		ip = a.Unmap()
		b = ip.AppendTo(b)
	}
	b = append(b, '"')
	if ip.IsValid() && l.trust(ip) {
		if xff := ctx.Request.Header.PeekBytes(hXForwardedFor); len(xff) > 0 {
			b = append(b, `,"forwarded_for":`...)
			b = appendJSONString(b, xff)
		}
	}
	b = append(b, `,"method":`...)
	b = appendJSONString(b, ctx.Method())
	_, rawKey, ok := splitPath(ctx.Request.URI().PathOriginal())
	if !ok {
		rawKey = nil // not a /t/{token}/ path: log no key (the path might hold anything)
	}
	b = append(b, `,"key":`...)
	b = appendJSONString(b, rawKey)
	b = append(b, `,"range":`...)
	b = appendJSONString(b, ctx.Request.Header.PeekBytes(hRange))
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(ctx.Response.StatusCode()), 10)
	b = append(b, `,"cache":`...)
	b = appendJSONString(b, ctx.Response.Header.PeekBytes(hXCache))
	b = append(b, `,"sub":`...)
	b = appendJSONString(b, s2b(sub))
	*bp = b
	return bp
}

// finish appends the bytes sent and the times and queues the line.
func (l *AccessLog) finish(bp *[]byte, sent int64, ttfb, dur time.Duration) {
	b := append(*bp, `,"bytes":`...)
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, `,"ttfb_us":`...)
	b = strconv.AppendInt(b, ttfb.Microseconds(), 10)
	b = append(b, `,"dur_us":`...)
	b = strconv.AppendInt(b, dur.Microseconds(), 10)
	b = append(b, "}\n"...)
	select {
	case <-l.done:
		l.dropped.Add(1)
	default:
		l.mu.Lock()
		if len(l.pending)+len(b) > l.limit {
			l.dropped.Add(1)
		} else {
			l.pending = append(l.pending, b...)
			l.nlines++
		}
		full := len(l.pending) >= flushBytes
		l.mu.Unlock()
		if full {
			select {
			case l.kick <- struct{}{}:
			default:
			}
		}
	}
	*bp = b[:0]
	l.pool.Put(bp)
}

func (l *AccessLog) trust(ip netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped; other bytes as they are. Runs that need no
// escape are copied at once.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for len(s) > 0 {
		i := 0
		for i < len(s) && !jsonEscape[s[i]] {
			i++
		}
		b, s = append(b, s[:i]...), s[i:]
		if len(s) == 0 {
			break
		}
		c := s[0]
		s = s[1:]
		if c == '"' || c == '\\' {
			b = append(b, '\\', c)
		} else {
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		}
	}
	return append(b, '"')
}

// jsonEscape marks the bytes appendJSONString escapes.
var jsonEscape = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'], t[0x7f] = true, true, true
	return t
}()

// logged is the public handler with access logging: the line is begun when
// the handler returns and finished then, or, for a body the edge streams,
// when that body is closed.
func (s *Server) logged(ctx *fasthttp.RequestCtx) {
	start := s.now()
	sub := s.handle(ctx)
	ready := s.now()
	bp := s.alog.begin(ctx, start, sub)
	if ctx.Response.IsBodyStream() {
		if b, ok := ctx.Response.BodyStream().(*body); ok {
			b.log = pendingLog{l: s.alog, buf: bp, start: start, ready: ready}
			return
		}
	}
	n := int64(len(ctx.Response.Body()))
	if ctx.IsHead() {
		n = 0
	}
	s.alog.finish(bp, n, ready.Sub(start), ready.Sub(start))
}
