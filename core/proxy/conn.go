package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
)

// Listener wraps a client listener so that each connection's writes, and the reads of
// a streamed request body, time out only when they stop making progress.
type Listener struct {
	net.Listener
	// Idle is the longest a body read or a response write may wait without progress.
	Idle time.Duration
}

// Accept returns the next client connection, wrapped.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &clientConn{Conn: c, idle: l.Idle}, nil
}

// clientConn is a client connection. The server sets read deadlines for headers and
// keep-alive waits itself; while the handler streams a request body, each read gets a
// fresh idle deadline instead, until the server sets its next deadline. Each write
// gets a fresh idle deadline, so a slow reader is cut off but a long stream is not.
type clientConn struct {
	net.Conn
	idle            time.Duration
	streaming       atomic.Bool
	readAt, writeAt time.Time // deadlines set last (see backend.Refresh)
	// headerEnd scans a request's header block for its end (CRLF CRLF) and for a
	// bare LF line ending, from the server's deadline for reading a request on.
	headerEnd headerScan
}

// streamBody switches reads to per-read idle deadlines for the current request body.
func (c *clientConn) streamBody() { c.streaming.Store(true) }

// SetReadDeadline is the server taking back control of read deadlines.
func (c *clientConn) SetReadDeadline(t time.Time) error {
	c.streaming.Store(false)
	c.headerEnd.start()
	c.readAt = t
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is the server taking back control of deadlines.
func (c *clientConn) SetDeadline(t time.Time) error {
	c.streaming.Store(false)
	c.headerEnd.start()
	c.readAt, c.writeAt = t, t
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline sets the write deadline (a hijacked connection's owner may).
func (c *clientConn) SetWriteDeadline(t time.Time) error {
	c.writeAt = t
	return c.Conn.SetWriteDeadline(t)
}

// Read reads, with a fresh idle deadline while a body streams.
func (c *clientConn) Read(p []byte) (int, error) {
	if c.streaming.Load() {
		if err := backend.Refresh(&c.readAt, c.idle, c.Conn.SetReadDeadline); err != nil {
			return 0, err
		}
		return c.Conn.Read(p)
	}
	n, err := c.Conn.Read(p)
	if c.headerEnd.scanning && !c.headerEnd.scan(p[:n]) {
		return n, errBareLF
	}
	return n, err
}

// errBareLF refuses a request header with a line that ends in LF alone: the server
// waits for CRLF CRLF, so without it the request would hang until its timeout
// (DESIGN section 11: answered at once).
var errBareLF = errors.New("a header line ends in a bare LF, not CRLF")

// headerScan follows the bytes of one request's header block.
type headerScan struct {
	scanning bool
	last     [3]byte // the last bytes seen, for terminators split across reads
}

// start begins the scan of the next request's header block. A first LF counts as
// preceded by CR: the scan may start after bytes the server had already read.
func (h *headerScan) start() { *h = headerScan{scanning: true, last: [3]byte{0, 0, '\r'}} }

// scan reads b, a piece of the header block; it stops scanning at the block's end
// (CRLF CRLF) and reports false on a bare LF before it.
func (h *headerScan) scan(b []byte) bool {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			h.keep(b)
			return true
		}
		prev := h.last[2]
		if i > 0 {
			prev = b[i-1]
		}
		if prev != '\r' {
			return false
		}
		h.keep(b[:i+1])
		if h.last == [3]byte{'\n', '\r', '\n'} { // CRLF CRLF: the block is complete
			h.scanning = false
			return true
		}
		b = b[i+1:]
	}
	return true
}

// keep remembers the last three bytes of what was scanned so far.
func (h *headerScan) keep(b []byte) {
	for _, c := range b[max(0, len(b)-3):] {
		h.last = [3]byte{h.last[1], h.last[2], c}
	}
}

// ReadFrom writes what each read of r returns at once. The server reaches it for a
// response body whose header it flushed already (see exchange.answer), so that the
// body streams to the client as the backend sends it, whatever its framing.
func (c *clientConn) ReadFrom(r io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	var written int64
	for {
		n, rerr := r.Read(*bp)
		if n > 0 {
			w, werr := c.Write((*bp)[:n])
			written += int64(w)
			if werr != nil {
				return written, werr
			}
		}
		switch {
		case rerr == io.EOF:
			return written, nil
		case rerr != nil:
			return written, rerr
		}
	}
}

// clientBody is a client's streamed request body on its way to a backend. It keeps
// the error that cut it off (the client hung up, stalled or framed it badly), so
// that the failure is charged to the client, not to the backend it was sent to.
type clientBody struct {
	r    io.Reader
	left int   // bytes still due by Content-Length, -1 when chunked
	n    int64 // bytes read
	err  error
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.left >= 0 {
		b.left -= n
		if err == io.EOF && b.left > 0 { // the client hung up early
			err = io.ErrUnexpectedEOF
		}
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// copyBufs holds the buffers of streamed response bodies.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Write writes with a fresh idle deadline.
func (c *clientConn) Write(p []byte) (int, error) {
	if err := backend.Refresh(&c.writeAt, c.idle, c.Conn.SetWriteDeadline); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
