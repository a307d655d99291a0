package proxy

import (
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

// errBareLF refuses a request whose header block ends with a bare LF: the server
// waits for CRLF CRLF, so without it the request would hang until its timeout
// (DESIGN section 11: answered at once). Bare LFs within a block that does end with
// CRLF CRLF are read leniently, as the server and HAProxy do.
var errBareLF = errors.New("the header ends with a bare LF, not CRLF CRLF")

// headerScan follows the bytes of one request's header block, up to its end.
type headerScan struct {
	scanning bool    // between the start of a request and the end of its header
	ended    bool    // this request's header has ended; no new scan until the next
	last     [3]byte // the bytes before the next one, for endings split across reads
}

// start begins the scan of a request's header block, when the server sets the
// deadline for reading one. The server sets it twice for a request (idle, then
// read_header): a scan under way goes on, and one that saw the end of the header
// does not start again, or it would read the body as header lines.
func (h *headerScan) start() {
	if h.scanning || h.ended {
		return
	}
	*h = headerScan{scanning: true}
}

// stop ends scanning for good: the connection carries a tunnel now.
func (h *headerScan) stop() { *h = headerScan{ended: true} }

// next makes the following request's header scanned, once this one is handled.
func (h *headerScan) next() { *h = headerScan{} }

// scan reads b, a piece of the header block. It stops scanning at the block's end
// and reports false when an empty line ends it without CRLF CRLF.
func (h *headerScan) scan(b []byte) bool {
	for _, c := range b {
		w := [4]byte{h.last[0], h.last[1], h.last[2], c}
		h.last = [3]byte{w[1], w[2], w[3]}
		if c != '\n' {
			continue
		}
		switch {
		case w == [4]byte{'\r', '\n', '\r', '\n'}:
			h.scanning, h.ended = false, true
			return true
		case w[2] == '\n' || w[2] == '\r' && w[1] == '\n':
			return false // an empty line, so the end, but not CRLF CRLF
		}
	}
	return true
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
