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
// cannot be reused under the response.
//
// On a plain TCP connection of the public listener (publicConn) the body
// goes straight to the socket, with the response head: fasthttp flushes the
// head (ImmediateHeaderFlush), the connection holds it, and WriteTo sends
// head and parts with one writev — one system call and one trip through
// the TCP stack for the whole response. On any other connection (TLS, or
// wrapped by the per-IP limit) WriteTo writes the bytes to fasthttp's
// writer like any io.WriterTo.
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
}

type bodyPart struct {
	data []byte
	slot int32 // slab slot, or -1 for heap bytes
}

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
	p := bodyPart{data: e.Data[lo:hi], slot: -1}
	if inSlab {
		if !slab.Acquire(slot, gen) {
			return false
		}
		b.slab, p.slot = slab, slot
	}
	b.parts = append(b.parts, p)
	return true
}

// addHeap appends heap bytes.
func (b *body) addHeap(data []byte) {
	b.parts = append(b.parts, bodyPart{data: data, slot: -1})
}

// attach makes ctx send b as its body of n bytes, directly to the socket
// with the response head when that is possible, and reports whether it
// will be.
func (b *body) attach(ctx *fasthttp.RequestCtx, n int64) bool {
	if pc, ok := ctx.Conn().(*publicConn); ok && len(b.parts) <= maxFastParts {
		b.conn = pc
		pc.hold()
		ctx.Response.ImmediateHeaderFlush = true
	}
	ctx.Response.SetBodyStream(b, int(n))
	return b.conn != nil
}

// Read implements io.Reader, for writers that do not use WriteTo.
func (b *body) Read(p []byte) (int, error) {
	n := 0
	for b.i < len(b.parts) && n < len(p) {
		c := copy(p[n:], b.parts[b.i].data[b.off:])
		n += c
		if b.off += c; b.off == len(b.parts[b.i].data) {
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
		var total int64
		for b.i < len(b.parts) {
			n, err := w.Write(b.parts[b.i].data[b.off:])
			total += int64(n)
			if err != nil {
				b.off += n
				return total, err
			}
			b.i, b.off = b.i+1, 0
		}
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
// it returns, so nothing refers to a slot once the body is closed.
func (b *body) sendStep(fd uintptr) bool {
	for len(b.head) > 0 || b.i < len(b.parts) {
		iov := b.iov[:0]
		if len(b.head) > 0 {
			iov = appendIovec(iov, b.head)
		}
		for k := b.i; k < len(b.parts) && len(iov) < len(b.iov); k++ {
			d := b.parts[k].data
			if k == b.i {
				d = d[b.off:]
			}
			iov = appendIovec(iov, d)
		}
		r, _, errno := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
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

// advance moves past n bytes written: what is left of the head first, then
// the parts (a part written to its end is left behind).
func (b *body) advance(n int) {
	h := min(n, len(b.head))
	b.head, n = b.head[h:], n-h
	b.sent += int64(n)
	for b.i < len(b.parts) && n >= len(b.parts[b.i].data)-b.off {
		n -= len(b.parts[b.i].data) - b.off
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

// Close releases the slab references and returns b to its pool. fasthttp
// calls it once, when the body is sent or dropped.
func (b *body) Close() error {
	for _, p := range b.parts {
		if p.slot >= 0 {
			b.slab.Release(p.slot)
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
