package nethttp

import (
	"bytes"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// answerGate is a backend connection whose answers are read by package h1 before
// net/http's transport reads them, as gate does for requests: the event loop's parser
// judges both fronts' answers, so a backend's bytes get the same answer whichever
// front forwards them. An answer h1 accepts reaches the transport with one
// Content-Length (none for 1xx, 204 and 304); chunked bodies lose their extensions
// and framing trailers (h1.Chunked.Forward); one h1 refuses fails the read, and the
// request with it (502).
//
// The transport writes each request whole before it reads the answer, and a
// connection carries one request at a time: a write after a whole answer starts the
// next request. Writes and reads run on two goroutines.
type answerGate struct {
	net.Conn
	limits h1.Limits
	// stale counts, on the backend, a pooled connection found unsound: the backend
	// closed it, or sent bytes on it, while it was idle. Nil counts nothing.
	stale func()
	// Set by the writer, read by the reader: a request was written since the last
	// answer ended, and whether it was HEAD.
	next, head atomic.Bool
	// idle bounds each read of an answer's body (body_idle). The wait for a head
	// is the transport's (response_header) and a pooled connection's idle time its
	// own (idle): reads then have no deadline.
	idle   time.Duration
	readAt time.Time // the read deadline set last; zero when none is

	state answerState
	raw   []byte // an answer head under way
	passage
	resp h1.Response
	err  error
}

type answerState uint8

const (
	answerIdle    answerState = iota // no request: bytes now are unsolicited
	answerHead                       // an answer's head is to come
	answerBody                       // a Content-Length body
	answerChunked                    // a chunked body
	answerTunnel                     // until the connection ends (no framing, or 101)
)

// errMalformedAnswer is an answer h1 refused.
var errMalformedAnswer = errors.New("malformed answer from the backend")

func newAnswerGate(c net.Conn, limits h1.Limits, idle time.Duration, stale func()) *answerGate {
	g := &answerGate{Conn: c, limits: limits, idle: idle, stale: stale}
	g.next.Store(true)
	return g
}

// Write passes the request on, noting where one starts.
func (g *answerGate) Write(p []byte) (int, error) {
	if len(p) > 0 && g.next.CompareAndSwap(true, false) {
		g.head.Store(bytes.HasPrefix(p, []byte("HEAD ")))
	}
	return g.Conn.Write(p)
}

// Read gives the transport the judged bytes.
func (g *answerGate) Read(p []byte) (int, error) {
	for {
		if g.waiting() {
			return g.drain(p), nil
		}
		if g.err != nil {
			return 0, g.err
		}
		g.deadline()
		n, err := g.Conn.Read(p) // the transport's buffer; feed copies what it keeps
		if n > 0 {
			g.feed(p[:n])
		}
		if err != nil && g.err == nil {
			if g.state == answerIdle && g.next.Load() {
				g.countStale() // closed while idle in the pool
			}
			if g.state == answerHead && len(g.raw) > 0 {
				g.refuse() // the backend closed in the middle of a head
			} else {
				g.err = err
			}
		}
	}
}

// refuse fails the answer under way. The transport reads a status line it refuses:
// a failed read before any byte would have it send the request again on another
// connection, which is for connections the backend closed while idle, not for
// answers that came wrong.
func (g *answerGate) refuse() {
	g.out, g.pos = append(g.out[:0], "HTTP/1.1 ---\r\n\r\n"...), 0
	g.err = errMalformedAnswer
}

// feed judges b, read from the backend.
func (g *answerGate) feed(b []byte) {
	for len(b) > 0 && g.err == nil {
		switch g.state {
		case answerIdle:
			if !g.next.Load() {
				// A request went out: its answer starts here.
				g.state = answerHead
				continue
			}
			g.out = append(g.out, b...) // nobody asked: the transport drops the connection
			g.countStale()
			return
		case answerHead:
			g.raw = append(g.raw, b...)
			b = g.parseHead()
		case answerBody:
			var done bool
			if b, done = g.length(b); done {
				g.ended()
			}
		case answerChunked:
			var done bool
			var err error
			b, done, err = g.chunked(b)
			if err != nil {
				g.err = errMalformedAnswer // mid-body: the transport fails the body's read
				return
			}
			if done {
				g.ended()
			}
		case answerTunnel:
			g.out = append(g.out, b...)
			return
		}
	}
}

// deadline sets the read deadline for the state the answer is in: body_idle in a
// body, none while a head is awaited or the connection is idle.
func (g *answerGate) deadline() {
	inBody := g.state == answerBody || g.state == answerChunked || g.state == answerTunnel
	switch {
	case inBody && g.idle > 0:
		_ = backend.Refresh(&g.readAt, g.idle, g.Conn.SetReadDeadline)
	case !inBody && !g.readAt.IsZero():
		g.readAt = time.Time{}
		_ = g.Conn.SetReadDeadline(time.Time{})
	}
}

// countStale counts the connection as found unsound, once.
func (g *answerGate) countStale() {
	if g.stale != nil {
		g.stale()
		g.stale = nil
	}
}

// ended readies the gate for the next request's answer.
func (g *answerGate) ended() {
	g.state = answerIdle
	g.next.Store(true)
}

// parseHead parses the answer head in g.raw; it returns what follows it.
func (g *answerGate) parseHead() []byte {
	n, err := h1.ParseResponse(g.raw, g.limits, g.head.Load(), &g.resp)
	if err != nil {
		g.refuse()
		return nil
	}
	if n == 0 {
		return nil
	}
	r := &g.resp
	g.out = appendAnswerHead(g.out, g.raw[:n], r)
	rest := append([]byte(nil), g.raw[n:]...)
	g.raw = g.raw[:0]
	switch {
	case r.Status == 101:
		g.state = answerTunnel
	case r.Interim():
		// a 1xx: the final answer follows
	case r.Framing == h1.BodyLength && r.ContentLength > 0:
		g.state, g.left = answerBody, r.ContentLength
	case r.Framing == h1.BodyChunked:
		g.state = answerChunked
		g.chunk.Reset()
	case r.Framing == h1.BodyUntilClose:
		g.state = answerTunnel
	default:
		g.ended()
	}
	return rest
}

// appendAnswerHead appends the head the transport reads for r, whose raw head is raw:
// the status line as it came, the fields as h1 read them, one Content-Length.
func appendAnswerHead(dst, raw []byte, r *h1.Response) []byte {
	line := raw[:bytes.IndexByte(raw, '\n')]
	dst = append(dst, bytes.TrimSuffix(line, []byte("\r"))...)
	dst = append(dst, "\r\n"...)
	bodiless := r.Bodiless()
	for _, h := range r.Headers {
		if exchange.ContentLength(h.Name) || bodiless && h1.EqualFold(h.Name, "transfer-encoding") {
			continue
		}
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	if !bodiless && r.Length >= 0 {
		dst = append(dst, "Content-Length: "...)
		dst = appendInt(dst, r.Length)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}
