package edge

import (
	"io"
	"sync"
	"syscall"

	"github.com/valyala/fasthttp"

	"riff/edge/cache"
)

// body is a response body made of cached slices, sent without copying them
// first. Parts in the cache's slab are referenced (Slab.Acquire) from the
// moment they are added until fasthttp closes the body, so their bytes
// cannot be reused under the response.
//
// On a plain TCP connection the body goes straight to the socket: slab
// parts with sendfile from the slab's memory file (no copy from user
// memory), heap parts with write. fasthttp flushes the headers first
// (ImmediateHeaderFlush) and then calls WriteTo. On any other connection
// (TLS, or wrapped by the per-IP limit) WriteTo writes the bytes to
// fasthttp's writer like any io.WriterTo.
type body struct {
	parts []bodyPart
	i     int // next part
	off   int // bytes of parts[i] already sent
	slab  *cache.Slab
	rc    syscall.RawConn // nil: write through fasthttp
	fd    int             // the slab's memory file
	sent  int64
	err   error
	step  func(fd uintptr) bool // b.sendStep, made once per pooled body
	pool  *sync.Pool
}

type bodyPart struct {
	data    []byte
	slot    int32 // slab slot, or -1 for heap bytes
	fileOff int64 // offset of data in the slab's file
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
		b.slab, b.fd = slab, slab.FD()
		p.slot, p.fileOff = slot, slab.Offset(slot)+lo
	}
	b.parts = append(b.parts, p)
	return true
}

// addHeap appends heap bytes.
func (b *body) addHeap(data []byte) {
	b.parts = append(b.parts, bodyPart{data: data, slot: -1})
}

// attach makes ctx send b as its body of n bytes, directly to the socket
// when that is possible, and reports whether it will be.
func (b *body) attach(ctx *fasthttp.RequestCtx, n int64) bool {
	if b.slab != nil {
		if sc, ok := ctx.Conn().(syscall.Conn); ok {
			if rc, err := sc.SyscallConn(); err == nil {
				b.rc = rc
				ctx.Response.ImmediateHeaderFlush = true
			}
		}
	}
	ctx.Response.SetBodyStream(b, int(n))
	return b.rc != nil
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
	if b.rc == nil {
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
	b.sent, b.err = 0, nil
	if err := b.rc.Write(b.step); err != nil {
		return b.sent, err
	}
	return b.sent, b.err
}

// SupportsBodyWriteTo tells fasthttp to call WriteTo (fasthttp.BodyWriterTo).
func (b *body) SupportsBodyWriteTo() bool { return true }

// sendStep writes what is left to the socket fd; it returns false to wait
// until the socket is writable again (syscall.RawConn.Write).
func (b *body) sendStep(fd uintptr) bool {
	for b.i < len(b.parts) {
		p := &b.parts[b.i]
		var n int
		var err error
		if p.slot >= 0 {
			off := p.fileOff + int64(b.off)
			n, err = syscall.Sendfile(int(fd), b.fd, &off, len(p.data)-b.off)
		} else {
			n, err = syscall.Write(int(fd), p.data[b.off:])
		}
		if n > 0 {
			b.sent += int64(n)
			if b.off += n; b.off == len(p.data) {
				b.i, b.off = b.i+1, 0
			}
		}
		switch {
		case err == syscall.EAGAIN:
			return false
		case err == syscall.EINTR:
		case err != nil:
			b.err = err
			return true
		case n == 0:
			b.err = io.ErrShortWrite
			return true
		}
	}
	return true
}

// Close releases the slab references and returns b to its pool. fasthttp
// calls it once, when the body is sent or dropped.
func (b *body) Close() error {
	for _, p := range b.parts {
		if p.slot >= 0 {
			b.slab.Release(p.slot)
		}
	}
	clear(b.parts)
	b.parts, b.i, b.off, b.slab, b.rc, b.fd, b.sent, b.err = b.parts[:0], 0, 0, nil, nil, 0, 0, nil
	b.pool.Put(b)
	return nil
}
