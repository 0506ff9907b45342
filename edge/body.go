package edge

import (
	"io"
	"sync"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"

	"riff/edge/cache"
)

// body is a response body made of cached slices, sent without copying them
// first. Parts in the cache's slab are referenced (Slab.Acquire) from the
// moment they are added until fasthttp closes the body, so their bytes
// cannot be reused under the response. Slab parts of lendMin bytes or more
// are lent to the kernel when the slab lends (Slab.Lend): they go with
// sendfile from the slab's memory file, and the slab gives a lent slot
// fresh pages before it reuses it, so the pages a socket still holds never
// change. Parts in the disk tier's slice files (only on a publicConn) are
// open file descriptors, closed with the body, also sent with sendfile:
// safe because a slice file is never modified (package disk), and an
// unlinked file's pages live as long as anything refers to them.
//
// On a plain TCP connection of the public listener (loopConn, publicConn)
// the body goes straight to the socket, with the response head: the head
// and the parts sent by copy leave in one writev — one system call and one
// trip through the TCP stack —, or, when a part is sent with sendfile, the
// head and what precedes it leave with sendmsg(MSG_MORE) so that they share
// segments with the file's first bytes. On any other connection (TLS, or
// wrapped by the per-IP limit) WriteTo writes the bytes to fasthttp's
// writer like any io.WriterTo, copying from memory.
type body struct {
	parts []bodyPart
	i     int // next part
	off   int // bytes of parts[i] already sent
	slab  *cache.Slab
	conn  *publicConn // nil: write through fasthttp
	head  []byte      // the held response head, then what is left of it
	sent  int64
	err   error
	iov   [maxFastParts + 1]unix.Iovec
	step  func(fd uintptr) bool // b.sendStep, made once per pooled body
	pool  *sync.Pool
	log   pendingLog // the access log line to finish on Close (log.l == nil: none)
}

type bodyPart struct {
	data []byte // nil for a disk tier part
	slot int32  // slab slot, or -1
	fd   int32  // file to sendfile from: a disk tier slice file, the slab's memory file for a lent slot; or -1
	foff int64  // the part's offset in fd
	n    int    // length
}

// lendMin is the smallest slab part sent by reference (sendfile from the
// slab's memory file, when the slab lends); smaller ones are copied with
// the head, where one writev costs less than the extra system call.
const lendMin = 32 << 10

func newBody(pool *sync.Pool) *body {
	b := &body{pool: pool}
	b.step = b.sendStep
	return b
}

// add appends the bytes [lo, hi) of e. For a slab entry it takes a
// reference and reports false if the slot was freed meanwhile (the entry
// was evicted): the caller then treats the slice as missing.
func (b *body) add(slab *cache.Slab, e *cache.Entry, lo, hi int64) bool {
	slot, gen, inSlab := e.Slot()
	p := bodyPart{data: e.Data[lo:hi], slot: -1, fd: -1, n: int(hi - lo)}
	if inSlab {
		if !slab.Acquire(slot, gen) {
			return false
		}
		b.slab, p.slot = slab, slot
		if p.n >= lendMin && slab.Lending().On {
			fd, off := slab.Lend(slot)
			p.fd, p.foff = int32(fd), off+lo
		}
	}
	b.parts = append(b.parts, p)
	return true
}

// addHeap appends heap bytes.
func (b *body) addHeap(data []byte) {
	b.parts = append(b.parts, bodyPart{data: data, slot: -1, fd: -1, n: len(data)})
}

// addFile appends n bytes at off of the open file fd, which the body now
// owns (Close closes it). Only a body that will be attached to a publicConn
// may hold file parts (see attach).
func (b *body) addFile(fd int, off int64, n int) {
	b.parts = append(b.parts, bodyPart{slot: -1, fd: int32(fd), foff: off, n: n})
}

// hasFiles reports whether b holds file parts.
func (b *body) hasFiles() bool {
	for _, p := range b.parts {
		if p.data == nil {
			return true
		}
	}
	return false
}

// attach makes ctx send b as its body of n bytes, directly to the socket
// with the response head when that is possible, and reports whether it
// will be.
func (b *body) attach(ctx *fasthttp.RequestCtx, n int64) bool {
	ctx.Response.SetBodyStream(b, int(n))
	switch c := ctx.Conn().(type) {
	case *loopConn:
		return true // the loop sends it with the head (loop.go)
	case *publicConn:
		if len(b.parts) <= maxFastParts {
			b.conn = c
			c.hold()
			ctx.Response.ImmediateHeaderFlush = true
			return true
		}
	}
	return false
}

// Read implements io.Reader, for writers that do not use WriteTo.
func (b *body) Read(p []byte) (int, error) {
	n := 0
	for b.i < len(b.parts) && n < len(p) {
		part := &b.parts[b.i]
		var c int
		if part.data == nil {
			k, err := unix.Pread(int(part.fd), p[n:min(len(p), n+part.n-b.off)], part.foff+int64(b.off))
			if err != nil || k == 0 {
				return n, io.ErrUnexpectedEOF
			}
			c = k
		} else {
			c = copy(p[n:], part.data[b.off:])
		}
		n += c
		if b.off += c; b.off == part.n {
			b.i, b.off = b.i+1, 0
		}
	}
	if n == 0 && b.i == len(b.parts) {
		return 0, io.EOF
	}
	return n, nil
}

// WriteTo implements io.WriterTo.
func (b *body) WriteTo(w io.Writer) (int64, error) {
	if b.conn == nil {
		if b.hasFiles() { // not expected (see addFile): read the files
			n, err := io.Copy(w, struct{ io.Reader }{b})
			b.sent = n
			return n, err
		}
		var total int64
		for b.i < len(b.parts) {
			n, err := w.Write(b.parts[b.i].data[b.off:])
			total += int64(n)
			if err != nil {
				b.off += n
				b.sent = total
				return total, err
			}
			b.i, b.off = b.i+1, 0
		}
		b.sent = total
		return total, nil
	}
	b.head = b.conn.release()
	b.sent, b.err = 0, nil
	if err := b.conn.raw.Write(b.step); err != nil {
		return b.sent, err
	}
	return b.sent, b.err
}

// SupportsBodyWriteTo tells fasthttp to call WriteTo (fasthttp.BodyWriterTo).
func (b *body) SupportsBodyWriteTo() bool { return true }

// sendStep writes what is left of the head and the parts to the socket fd
// with writev; it returns false to wait until the socket is writable again
// (syscall.RawConn.Write). writev copies the bytes into the socket before
// it returns, so nothing refers to a slot once the body is closed. File
// parts go with sendfile, what comes before them with sendmsg and
// MSG_MORE, so that the head and the file's first bytes still share
// segments.
func (b *body) sendStep(fd uintptr) bool {
	for len(b.head) > 0 || b.i < len(b.parts) {
		if b.i < len(b.parts) && b.parts[b.i].fd >= 0 && len(b.head) == 0 {
			if !b.sendFile(fd) {
				return false
			}
			if b.err != nil {
				return true
			}
			continue
		}
		iov := b.iov[:0]
		if len(b.head) > 0 {
			iov = appendIovec(iov, b.head)
		}
		k := b.i
		for ; k < len(b.parts) && b.parts[k].fd < 0 && len(iov) < len(b.iov); k++ {
			d := b.parts[k].data
			if k == b.i {
				d = d[b.off:]
			}
			iov = appendIovec(iov, d)
		}
		if len(iov) == 0 {
			b.i, b.off = k, 0
			continue
		}
		var r uintptr
		var errno unix.Errno
		if k < len(b.parts) { // more follows: a file part, or iovecs beyond b.iov
			msg := unix.Msghdr{Iov: &iov[0]}
			msg.SetIovlen(len(iov))
			r, _, errno = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_MORE)
		} else {
			r, _, errno = unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		}
		n := int(r)
		switch {
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
			continue
		case errno != 0:
			b.err = errno
			return true
		case n == 0:
			b.err = io.ErrShortWrite
			return true
		}
		b.advance(n)
	}
	return true
}

// sendFile sends what is left of the file part b.parts[b.i] with sendfile.
// It returns false to wait for the socket. sendfile from a slice file may
// read the disk, so it is a blocking system call for the scheduler
// (Syscall: the runtime may hand the P to another thread meanwhile); from
// the slab's memory file it never waits (RawSyscall).
func (b *body) sendFile(sock uintptr) bool {
	p := &b.parts[b.i]
	call := unix.Syscall6
	if p.slot >= 0 {
		call = unix.RawSyscall6
	}
	for b.off < p.n {
		off := p.foff + int64(b.off)
		r, _, errno := call(unix.SYS_SENDFILE, sock, uintptr(p.fd), uintptr(unsafe.Pointer(&off)), uintptr(p.n-b.off), 0, 0)
		switch {
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
			continue
		case errno != 0:
			b.err = errno
			return true
		case r == 0: // the file is shorter than indexed: cannot happen with a checked file
			b.err = io.ErrUnexpectedEOF
			return true
		}
		b.sent += int64(r)
		b.off += int(r)
	}
	b.i, b.off = b.i+1, 0
	return true
}

// advance moves past n bytes written: what is left of the head first, then
// the parts (a part written to its end is left behind).
func (b *body) advance(n int) {
	h := min(n, len(b.head))
	b.head, n = b.head[h:], n-h
	b.sent += int64(n)
	for b.i < len(b.parts) && n >= b.parts[b.i].n-b.off {
		n -= b.parts[b.i].n - b.off
		b.i, b.off = b.i+1, 0
	}
	b.off += n
}

func appendIovec(iov []unix.Iovec, d []byte) []unix.Iovec {
	if len(d) == 0 {
		return iov
	}
	v := unix.Iovec{Base: unsafe.SliceData(d)}
	v.SetLen(len(d))
	return append(iov, v)
}

// Close releases the slab references and file descriptors, finishes the
// access log line, and returns b to its pool. fasthttp calls it once, when
// the body is sent or dropped.
func (b *body) Close() error {
	if lg := &b.log; lg.l != nil {
		lg.l.finish(lg.buf, b.sent, lg.ready.Sub(lg.start), lg.l.now().Sub(lg.start))
		*lg = pendingLog{}
	}
	for _, p := range b.parts {
		if p.slot >= 0 {
			b.slab.Release(p.slot)
		}
		if p.fd >= 0 && p.slot < 0 {
			unix.Close(int(p.fd))
		}
	}
	if b.conn != nil && b.conn.holding {
		b.conn.release() // the body was dropped before WriteTo: so is the head
	}
	clear(b.parts)
	clear(b.iov[:])
	b.parts, b.i, b.off, b.slab, b.conn, b.head, b.sent, b.err = b.parts[:0], 0, 0, nil, nil, nil, 0, nil
	b.pool.Put(b)
	return nil
}
