package edge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// The public listener's event loop.
//
// fasthttp serves each connection on a goroutine that, after answering,
// reads the next request at once: on a keep-alive connection that read
// finds nothing (EAGAIN) and the goroutine parks in Go's poller until the
// next request, so every answer costs two reads, a park, a wake-up through
// the runtime's scheduler, and three deadline updates. nginx reads a
// connection only when epoll says it is readable. The loop does the same:
// one goroutine reads the events of an epoll set of our own holding the
// listener and the connections between requests; the set is itself
// registered in Go's poller (os.NewFile of its descriptor), so when
// nothing is ready the goroutine parks in Go's scheduler like any other
// and the P stays free for fills, prefetches and the admin listener (an
// epoll_wait as a blocking system call was measured too: no clearer gain,
// and with GOMAXPROCS=1 it held the P while idle, so a miss's p99 went
// from 2 to 13–15 ms; docs/performance.md). A readable connection is
// read once, its requests are parsed by fasthttp (RequestCtx,
// RequestHeader.Read) and served by the same handler chain,
// synchronously, and each answer leaves as body.go sends it for
// fasthttp's connections (one writev, or sendmsg and sendfile). Timeouts
// are a sweep once a second, not timers per request.
//
// Whatever would make the loop wait is handed off instead of waited for:
//   - a request the handler cannot answer from RAM (a fill from the disk
//     tier, a peer or the origin): the handler calls s.mayBlock first (see
//     gather and fetchWholeCoalesced), which takes the connection out of
//     the epoll set and starts another goroutine to run the loop; the
//     current goroutine finishes the request, waiting as fasthttp's would,
//     and puts the connection back in the loop (returnToLoop);
//   - an answer the socket does not take at once (a slow reader): the same
//     hand-off; the goroutine finishes the write in Go's poller, on a
//     duplicate of the descriptor, under the write timeout, and puts the
//     connection back;
//   - a request the loop does not parse itself (one with a body, a
//     malformed one, a head larger than the read buffer): the connection
//     is handed to fasthttp for good (net.FileConn of its descriptor), with
//     the bytes read so far, and fasthttp answers as it did before the
//     loop, from a listener of such connections (handoffListener).
//
// So a slice in RAM never waits for anything but the CPU, and every other
// path runs the code it ran before the loop. The slab references of an
// answer are released only when its last byte is in the socket (the
// response's Reset closes the body after the write), whichever goroutine
// finishes it.
//
// TLS and a per-IP connection cap are not served by the loop (Serve uses
// fasthttp alone for them), nor is anything with Config.GoroutinePerConn.
type eventLoop struct {
	s    *Server
	ln   net.Listener // kept, so that its descriptor stays open
	lnfd int
	epfd int
	epf  *os.File // epfd, in Go's poller
	eprc syscall.RawConn
	name []byte // the Server header

	handed *handoffListener // connections for fasthttp

	conns map[int32]*loopConn // owned by the goroutine running the loop
	open  atomic.Int64        // len(conns) and returning, for the limit and the gauge

	mu        sync.Mutex
	returning []*loopConn // back from hand-offs, not yet in conns
	closed    bool        // the loop has closed its connections: close those returning

	stopping atomic.Bool
	stopped  chan struct{}  // closed when the loop has closed its connections
	busy     sync.WaitGroup // hand-offs still finishing a request
	runners  sync.Pool      // *runner
	// readers holds the request buffers (*bufio.Reader) of connections
	// between requests with nothing buffered: idle connections need none.
	readers sync.Pool
}

// Why a connection left the loop.
const (
	handoffFill    = iota // the handler had to fetch
	handoffWrite          // the socket did not take the whole answer
	handoffRequest        // a request the loop does not parse
	handoffReasons
)

var handoffNames = [handoffReasons]string{"fill", "write", "request"}

// loopBatch is how many events one epoll_wait returns at most.
const loopBatch = 128

// runner is what the goroutine running the loop uses: it moves with a
// request that is handed off, and the next goroutine takes another.
type runner struct {
	l      *eventLoop
	ctx    *fasthttp.RequestCtx
	events [loopBatch]unix.EpollEvent
	head   []byte
	out    bytes.Buffer  // answers that are not a *body: fasthttp writes them here
	bw     *bufio.Writer // over out
	gone   bool          // its connection was handed off: this goroutine left the loop
}

// loopConn is a connection of the loop. It is a net.Conn for fasthttp's
// RequestCtx (addresses; reads for the request parser, from the socket
// without waiting) and for nothing else.
type loopConn struct {
	fd        int32
	l         *eventLoop
	raddr     net.Addr
	br        *bufio.Reader // nil while idle with nothing buffered
	deadline  int64         // unix nanoseconds: idle or read timeout
	inRequest bool          // some bytes of a request have arrived
	r         *runner       // set while a runner serves it
}

var errAgain = errors.New("edge: would block")

// rawRead and rawEpollWait are read(2) and epoll_wait(2) with a zero
// timeout as raw system calls: on a non-blocking socket, and with nothing
// to wait for, they never block, so the runtime need not prepare for
// them to (see publicConn).
func rawRead(fd int32, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	r, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

func rawEpollWait(epfd uintptr, events []unix.EpollEvent) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// Read reads what the socket has, without waiting: errAgain when nothing.
func (c *loopConn) Read(p []byte) (int, error) {
	for {
		n, err := rawRead(c.fd, p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return 0, errAgain
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c *loopConn) Write([]byte) (int, error) {
	return 0, errors.New("edge: loop connections are written by the loop")
}
func (c *loopConn) Close() error                     { return nil } // the loop closes its connections
func (c *loopConn) LocalAddr() net.Addr              { return c.l.ln.Addr() }
func (c *loopConn) RemoteAddr() net.Addr             { return c.raddr }
func (c *loopConn) SetDeadline(time.Time) error      { return nil }
func (c *loopConn) SetReadDeadline(time.Time) error  { return nil }
func (c *loopConn) SetWriteDeadline(time.Time) error { return nil }

// newEventLoop makes the loop for ln, a TCP listener; it reports false if
// ln is not one or the system refuses.
func newEventLoop(s *Server, ln net.Listener) (*eventLoop, error) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil, errors.New("not a TCP listener")
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return nil, err
	}
	lnfd := -1
	if err := rc.Control(func(fd uintptr) { lnfd = int(fd) }); err != nil {
		return nil, err
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lnfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lnfd, &ev); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	epf := os.NewFile(uintptr(epfd), "epoll") // non-blocking: Go's poller takes it
	eprc, err := epf.SyscallConn()
	if err != nil {
		epf.Close()
		return nil, err
	}
	l := &eventLoop{
		s: s, ln: ln, lnfd: lnfd, epfd: epfd, epf: epf, eprc: eprc,
		name:    []byte(s.public.Name),
		handed:  newHandoffListener(ln.Addr()),
		conns:   map[int32]*loopConn{},
		stopped: make(chan struct{}),
	}
	l.readers.New = func() any { return bufio.NewReaderSize(nil, int(s.public.ReadBufferSize)) }
	l.runners.New = func() any {
		r := &runner{l: l, ctx: new(fasthttp.RequestCtx)}
		r.bw = bufio.NewWriterSize(&r.out, 4<<10)
		return r
	}
	return l, nil
}

// serve runs the loop and fasthttp's server of handed-off connections
// until stop.
func (l *eventLoop) serve() error {
	go l.run(l.runners.Get().(*runner))
	err := l.s.public.Serve(publicListener{l.handed})
	<-l.stopped
	return err
}

// stop makes the loop close its connections and the listener, and stops
// taking hand-offs; fasthttp's Shutdown (called next) then stops the
// handed-off connections. It waits for the loop to stop, and for hand-offs
// still finishing a request, within ctx.
func (l *eventLoop) stop(done <-chan struct{}) error {
	if l.stopping.CompareAndSwap(false, true) {
		l.epf.SetReadDeadline(time.Unix(1, 0)) // wake the loop
	}
	select {
	case <-l.stopped:
	case <-done:
		return errors.New("edge: the event loop did not stop in time")
	}
	finished := make(chan struct{})
	go func() { l.busy.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-done:
		return errors.New("edge: handed-off requests did not finish in time")
	}
	l.handed.Close()
	return nil
}

// sweepEvery is how often the loop closes connections past their timeout.
const sweepEvery = time.Second

// run is the loop; r is this goroutine's runner. It returns when the loop
// stops, or when it has handed a connection off (r.gone: another goroutine
// runs the loop then).
func (l *eventLoop) run(r *runner) {
	var n int
	var werr error
	wait := func(fd uintptr) bool {
		n, werr = rawEpollWait(fd, r.events[:])
		if werr == unix.EINTR {
			return false
		}
		return n != 0 || werr != nil
	}
	nextSweep := time.Now().Add(sweepEvery)
	l.epf.SetReadDeadline(nextSweep)
	for {
		if l.stopping.Load() {
			l.close()
			l.runners.Put(r)
			return
		}
		err := l.eprc.Read(wait)
		now := time.Now()
		if err != nil || !now.Before(nextSweep) {
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				l.s.obs.Logger.Error("event loop: waiting for events", "err", err)
			}
			l.sweep(now.UnixNano())
			nextSweep = now.Add(sweepEvery)
			l.epf.SetReadDeadline(nextSweep)
			if l.stopping.Load() {
				continue
			}
			if err != nil {
				continue
			}
		}
		if werr != nil {
			continue
		}
		for i := range r.events[:n] {
			ev := &r.events[i]
			if int(ev.Fd) == l.lnfd {
				l.accept(now)
				continue
			}
			c := l.conns[ev.Fd]
			if c == nil {
				l.takeReturning(false)
				if c = l.conns[ev.Fd]; c == nil {
					continue
				}
			}
			if r.serve(c, now.UnixNano()) {
				r.gone = false
				l.runners.Put(r)
				return // another goroutine runs the loop now
			}
		}
		// Under load the loop never parks; yielding once per batch lets
		// other goroutines run and keeps the runtime's monitor from
		// preempting the loop every 10 ms (it then sleeps longer too).
		runtime.Gosched()
	}
}

// accept takes the connections waiting on the listener.
func (l *eventLoop) accept(now time.Time) {
	for range loopBatch {
		fd, sa, err := unix.Accept4(l.lnfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == unix.EINTR || err == unix.ECONNABORTED:
			continue
		case err != nil: // EAGAIN: none left; EMFILE and the like: try again later
			return
		}
		if int(l.open.Load())+int(l.s.public.GetOpenConnectionsCount()) >= l.s.cfg.MaxConns {
			unix.Write(fd, tooManyConns) // best effort, as fasthttp does
			unix.Close(fd)
			continue
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		c := &loopConn{fd: int32(fd), l: l, raddr: tcpAddr(sa), deadline: now.Add(l.s.cfg.ReadTimeout).UnixNano(), inRequest: true}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			unix.Close(fd)
			continue
		}
		l.conns[int32(fd)] = c
		l.open.Add(1)
	}
}

var tooManyConns = []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")

func tcpAddr(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]).To16(), Port: a.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return &net.TCPAddr{}
}

// sweep closes the connections past their deadline.
func (l *eventLoop) sweep(now int64) {
	l.takeReturning(false)
	for _, c := range l.conns {
		if now >= c.deadline {
			l.drop(c)
		}
	}
}

// close closes every connection of the loop, and the listener.
func (l *eventLoop) close() {
	l.takeReturning(true)
	for _, c := range l.conns {
		l.drop(c)
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.lnfd, nil)
	l.ln.Close()
	l.epf.Close()
	close(l.stopped)
}

// drop closes c.
func (l *eventLoop) drop(c *loopConn) {
	delete(l.conns, c.fd)
	l.open.Add(-1)
	c.releaseReader()
	unix.Close(int(c.fd))
}

func (c *loopConn) releaseReader() {
	if c.br != nil {
		c.br.Reset(nil)
		c.l.readers.Put(c.br)
		c.br = nil
	}
}

// serve reads c and answers every complete request it holds. It reports
// whether it handed c off (this goroutine then no longer runs the loop).
func (r *runner) serve(c *loopConn, now int64) (handedOff bool) {
	l := r.l
	if c.br == nil {
		c.br = l.readers.Get().(*bufio.Reader)
		c.br.Reset(c)
	}
	// One read: what the socket has.
	_, rerr := c.br.Peek(c.br.Buffered() + 1)
	if rerr == errAgain {
		rerr = nil
	}
	for {
		buffered := c.br.Buffered()
		if buffered == 0 {
			if rerr != nil {
				l.drop(c) // EOF or a socket error between requests
			} else {
				c.releaseReader()
			}
			return false
		}
		raw, _ := c.br.Peek(buffered)
		if !headerComplete(raw) {
			if buffered == c.br.Size() {
				r.handOffRequest(c, raw) // a head larger than the buffer: fasthttp answers it
				return true
			}
			if rerr != nil {
				l.drop(c) // closed in the middle of a request
				return false
			}
			if !c.inRequest {
				c.inRequest = true
				c.deadline = now + int64(l.s.cfg.ReadTimeout)
			}
			return false
		}
		ctx := r.ctx
		ctx.Init2(c, fasthttpLogger{l.s.obs}, false)
		// Header.Read parses what is buffered (the head is complete) and
		// discards it from br; raw still holds it, unchanged until br reads
		// again.
		err := ctx.Request.Header.Read(c.br)
		if cl := ctx.Request.Header.ContentLength(); err != nil || cl > 0 || cl == -1 {
			// Malformed, or a body (which no GET or HEAD of ours has; -1
			// is chunked): fasthttp answers it as it would have.
			ctx.Request.Reset()
			r.handOffRequest(c, raw)
			return true
		}
		c.inRequest = false
		c.r = r
		r.answer(c)
		if r.gone {
			return true
		}
		c.r = nil
		if l.conns[c.fd] == nil {
			return false // closed after the answer
		}
		c.deadline = now + int64(l.s.cfg.IdleTimeout)
	}
}

// headerComplete reports whether b holds a whole request head.
func headerComplete(b []byte) bool {
	return bytes.Contains(b, []byte("\r\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// answer runs the handler for the request in r.ctx and sends the answer.
func (r *runner) answer(c *loopConn) {
	l := r.l
	ctx := r.ctx
	ctx.Response.Header.SetNoDefaultContentType(true)
	ctx.Response.Header.SetServerBytes(l.name)
	l.s.public.Handler(ctx)

	resp := &ctx.Response
	if ctx.IsHead() {
		resp.SkipBody = true
	}
	closing := ctx.Request.Header.ConnectionClose() || resp.Header.ConnectionClose() || l.stopping.Load()
	if closing {
		resp.Header.SetConnectionClose()
	} else if !ctx.Request.Header.IsHTTP11() {
		resp.Header.SetCanonical(hConnection, vKeepAlive)
	}
	b, direct := resp.BodyStream().(*body)
	plain := !direct || resp.SkipBody
	if plain {
		r.out.Reset()
		r.bw.Reset(&r.out)
		if err := resp.Write(r.bw); err != nil || r.bw.Flush() != nil {
			closing = true
		}
		b = l.s.bodies.Get().(*body)
		b.addHeap(r.out.Bytes())
	} else {
		r.head = resp.Header.AppendBytes(r.head[:0])
		b.head = r.head
	}
	var err error
	if !r.gone && !b.sendStep(uintptr(c.fd)) {
		r.handOff(c, handoffWrite)
	}
	if r.gone {
		err = r.finish(c, b)
	} else {
		err = b.err
	}
	if plain {
		b.Close()
	}
	resp.Reset() // closes a *body: its slab references are released after the write
	ctx.Request.Reset()
	ctx.ResetUserValues()
	if r.gone {
		r.returnToLoop(c, err != nil || closing)
		return
	}
	if err != nil || closing {
		l.drop(c)
	}
}

// mayBlock is called by the handler before anything that can wait (a
// fill): on a loop connection, it hands the connection off, so that the
// loop goes on while this goroutine waits.
func (s *Server) mayBlock(rctx context.Context) {
	ctx, ok := rctx.(*fasthttp.RequestCtx)
	if !ok {
		return
	}
	if c, ok := ctx.Conn().(*loopConn); ok && c.r != nil && !c.r.gone {
		c.r.handOff(c, handoffFill)
	}
}

// handOff takes c out of the loop and starts another goroutine to run it;
// this goroutine finishes c's request, then leaves c to fasthttp.
func (r *runner) handOff(c *loopConn, why int) {
	l := r.l
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, int(c.fd), nil)
	delete(l.conns, c.fd)
	l.open.Add(-1)
	l.busy.Add(1)
	l.s.m.handoffs[why].Inc()
	r.gone = true
	go l.run(l.runners.Get().(*runner))
}

// handOffRequest hands c to fasthttp for good, before its next request
// was answered: fasthttp reads that request from unread, what c has read
// and not answered (it may alias c's buffer).
func (r *runner) handOffRequest(c *loopConn, unread []byte) {
	l := r.l
	r.handOff(c, handoffRequest)
	defer l.busy.Done()
	pending := append([]byte(nil), unread...)
	c.releaseReader()
	c.r = nil
	l.toFasthttp(c, pending)
}

// toFasthttp gives c to fasthttp's server of handed-off connections, with
// pending to be read first.
func (l *eventLoop) toFasthttp(c *loopConn, pending []byte) {
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f) // a duplicate in Go's poller
	f.Close()
	if err != nil {
		return
	}
	tc, ok := nc.(*net.TCPConn)
	if !ok || l.stopping.Load() {
		nc.Close()
		return
	}
	pc := newPublicConn(tc)
	pc.pending = pending
	l.handed.push(pc)
}

// finish sends what is left of b on the handed-off c: at once if the
// socket takes it, or else waiting in Go's poller under the write timeout,
// through a duplicate of the descriptor (closed after).
func (r *runner) finish(c *loopConn, b *body) error {
	if b.err != nil || b.sendStep(uintptr(c.fd)) {
		return b.err
	}
	dup, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), "")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return err
	}
	defer nc.Close() // c.fd keeps the socket
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return errors.New("edge: not a TCP connection")
	}
	pc := newPublicConn(tc)
	pc.SetWriteDeadline(time.Now().Add(r.l.s.cfg.WriteTimeout))
	if err := pc.raw.Write(b.step); err != nil {
		return err
	}
	return b.err
}

// returnToLoop puts c back in the loop after a handed-off answer (or closes
// it). A connection with pipelined requests buffered goes to fasthttp
// instead: epoll would not say so.
func (r *runner) returnToLoop(c *loopConn, closing bool) {
	l := r.l
	defer l.busy.Done()
	c.r = nil
	if closing {
		c.releaseReader()
		unix.Close(int(c.fd))
		return
	}
	if c.br != nil && c.br.Buffered() > 0 {
		b, _ := c.br.Peek(c.br.Buffered())
		pending := append([]byte(nil), b...)
		c.releaseReader()
		l.toFasthttp(c, pending)
		return
	}
	c.releaseReader()
	c.inRequest, c.deadline = false, time.Now().Add(l.s.cfg.IdleTimeout).UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.fd}
	if l.closed || unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, int(c.fd), &ev) != nil {
		unix.Close(int(c.fd))
		return
	}
	l.returning = append(l.returning, c)
	l.open.Add(1)
}

// takeReturning moves the connections back from hand-offs into the loop's
// table; closing, it also makes later ones close instead.
func (l *eventLoop) takeReturning(closing bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.returning {
		l.conns[c.fd] = c
	}
	clear(l.returning)
	l.returning = l.returning[:0]
	l.closed = l.closed || closing
}

// handoffListener is a net.Listener of the connections the loop handed
// off, for fasthttp's Serve.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn, 64), closed: make(chan struct{})}
}

func (h *handoffListener) push(c net.Conn) {
	select {
	case h.conns <- c:
	case <-h.closed:
		c.Close()
	}
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.closed:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	h.once.Do(func() { close(h.closed) })
	return nil
}

func (h *handoffListener) Addr() net.Addr { return h.addr }

// loopConns is the gauge of connections the loop holds.
func (l *eventLoop) loopConns() float64 { return float64(l.open.Load()) }

var (
	hConnection = []byte("Connection")
	vKeepAlive  = []byte("keep-alive")
)
