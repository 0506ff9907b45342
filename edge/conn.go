package edge

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// publicListener hands fasthttp the public connections as *publicConn, so
// that a media response can leave in one system call.
type publicListener struct{ net.Listener }

func (l publicListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	if pc := newPublicConn(tc); pc != nil {
		return pc, nil
	}
	return c, nil
}

// newPublicConn wraps tc, or returns nil if it has no raw connection.
func newPublicConn(tc *net.TCPConn) *publicConn {
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	pc := &publicConn{TCPConn: tc, raw: raw}
	pc.readStep = pc.read
	return pc
}

// publicConn is a plain TCP connection of the public listener. It can hold
// back the response head that fasthttp flushes before a body (see body):
// the body's first write then carries head and body together, one trip
// through the TCP stack instead of a small segment for the head and then
// the body. Only the goroutine serving the connection uses it, as fasthttp
// does.
//
// Its reads, and the bodies' writev, are made with RawSyscall, not
// Syscall. Both are on non-blocking sockets and never block (EAGAIN parks
// the goroutine in the netpoller, as package net does), but a writev of a
// 100 KB answer on loopback runs the TCP stack for tens of microseconds, and
// a goroutine that long "in a system call" has its P taken away by the
// runtime's monitor thread (sysmon), which then keeps waking every 20 µs:
// with GOMAXPROCS=1 that was a thread hand-off per answer and sysmon at 8 %
// of the edge's CPU (docs/performance.md).
type publicConn struct {
	*net.TCPConn
	raw     syscall.RawConn // made once: SyscallConn allocates
	holding bool            // the next writes are a head the body sends
	head    []byte          // the held head
	pending []byte          // read before the connection was handed over (loop.go): Read returns these first

	// Read's state, for readStep (made once per connection).
	rbuf     []byte
	rn       int
	rerr     error
	readStep func(fd uintptr) bool
}

// Read reads like net.Conn's Read, with a raw system call (see publicConn).
func (c *publicConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		if c.pending = c.pending[n:]; len(c.pending) == 0 {
			c.pending = nil
		}
		return n, nil
	}
	c.rbuf, c.rn, c.rerr = p, 0, nil
	err := c.raw.Read(c.readStep)
	n, rerr := c.rn, c.rerr
	c.rbuf, c.rerr = nil, nil
	switch {
	case err != nil: // closed, or the read deadline passed
		return 0, err
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (c *publicConn) read(fd uintptr) bool {
	for {
		n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(c.rbuf))), uintptr(len(c.rbuf)))
		switch errno {
		case 0:
			c.rn = int(n)
			return true
		case unix.EAGAIN:
			return false // wait in the netpoller until readable
		case unix.EINTR:
			continue
		default:
			c.rerr = os.NewSyscallError("read", errno)
			return true
		}
	}
}

// Write writes p, or keeps it for the body while a head is held.
func (c *publicConn) Write(p []byte) (int, error) {
	if c.holding {
		c.head = append(c.head, p...)
		return len(p), nil
	}
	return c.TCPConn.Write(p)
}

// hold starts holding the head that fasthttp writes next.
func (c *publicConn) hold() {
	c.holding = true
	c.head = c.head[:0]
}

// release stops holding and returns what was held; the caller sends it.
func (c *publicConn) release() []byte {
	c.holding = false
	return c.head
}
