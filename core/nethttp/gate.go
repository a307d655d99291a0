package nethttp

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// gate is a client connection whose requests are read by package h1 before the
// net/http server reads them: the event loop's parser is the one definition of a
// well-formed request, so both fronts refuse the same bytes with the same answer
// (DESIGN section 10.3). A head h1 accepts reaches the server rewritten from what h1
// parsed (one Content-Length, no leading empty lines); a head it refuses is answered
// with the proxy's own error, and the connection ends. Bodies pass through, chunked
// ones as h1's Chunked.Forward passes them to a backend.
//
// A gate is read by the server's goroutine alone; Write, Close and the deadlines
// pass through.
type gate struct {
	net.Conn
	f     *Front
	state gateState
	raw   []byte // bytes read, not yet judged (a head under way, or held)
	passage
	req     h1.Request
	refuse  *h1.Error // a head refused, answered when the server next reads a head
	err     error     // the read error after out is drained
	upgrade bool      // the request being read asks for an upgrade
	tls     bool      // the connection is TLS (the server reads it decrypted)
	// decided is how the handler answered an upgrade request (decidedTunnel,
	// decidedHTTP), for the next Read to apply: the handler's goroutine never
	// touches the rest of the gate, which the server reads on its own.
	decided atomic.Int32

	// A head under way must be whole within read_header from its first byte,
	// whatever deadline the server set (its idle timeout while it waits for a
	// connection's next request): the read deadline is the earlier of the two.
	dmu       sync.Mutex
	server    time.Time // the deadline the server set last
	headStart time.Time // when the head under way began; zero between heads
}

type gateState uint8

const (
	gateHead    gateState = iota // a request head is to come
	gateBody                     // a Content-Length body
	gateChunked                  // a chunked body
	gateHold                     // after an upgrade request: held until its answer
	gateTunnel                   // an upgraded connection: bytes pass as they are
)

// errRefused ends the server's read of a connection whose head was refused and
// answered; the server closes it without a word (a read error, as for a reset).
var errRefused = &net.OpError{Op: "read", Net: "tcp", Err: errors.New("request refused by the h1 parser")}

// How an upgrade request was answered (gate.decided).
const (
	decidedTunnel = 1
	decidedHTTP   = 2
)

// Read gives the server the judged bytes.
func (g *gate) Read(p []byte) (int, error) {
	if d := g.decided.Swap(0); d != 0 {
		g.upgraded(d == decidedTunnel)
	}
	for {
		if g.waiting() {
			return g.drain(p), nil
		}
		if g.state == gateTunnel && len(g.raw) == 0 {
			return g.Conn.Read(p)
		}
		if g.refuse != nil {
			if len(p) == 1 {
				// The server's look for a closed connection while a handler runs:
				// the answer waits for the server to ask for the next head, so it
				// never lands in the middle of the previous answer.
				return 0, nil
			}
			g.answer(exchange.Malformed(g.refuse))
			return 0, errRefused
		}
		if g.err != nil {
			if g.err == io.EOF && len(p) == 1 && g.state != gateTunnel {
				// The server's one-byte look for a closed connection while a
				// handler runs: a client that only finished sending (a half-close)
				// still gets its answer, as from the event loop; the end is read
				// with the next head.
				return 0, nil
			}
			return 0, g.err
		}
		if g.state == gateHold {
			if len(p) == 1 {
				return 0, nil
			}
			// The server reads a head: the handler did not say how the upgrade
			// went, so it went on as HTTP.
			g.upgraded(false)
			continue
		}
		// The server's own buffer takes the read: an idle connection waiting here
		// holds no buffer of the gate's, and feed copies what it keeps. The
		// server's one-byte look while a handler runs reads through a buffer of
		// the gate's instead, so that a pipelined head is not parsed byte by byte.
		buf, bp := p, (*[]byte)(nil)
		if len(p) == 1 {
			bp = smallReads.Get().(*[]byte)
			buf = *bp
		}
		n, err := g.Conn.Read(buf)
		if n > 0 {
			g.feed(buf[:n])
		}
		if bp != nil {
			smallReads.Put(bp)
		}
		if err != nil {
			switch {
			case err == io.EOF && len(p) == 1 && !g.waiting() && g.state != gateTunnel:
				g.err = err
				return 0, nil // see above: a half-close is not an abort
			case !isTimeout(err):
				g.err = err
			case g.state == gateHead && len(g.raw) > 0 && g.refuse == nil && len(p) > 1:
				// read_header passed in the middle of a head (not the server calling
				// off its one-byte look while a handler runs): the event loop's answer.
				g.answer(exchange.HeadTimeout)
				g.err = errRefused
			case !g.waiting():
				// A deadline is the server's to set and move (read_header, idle, a
				// read it calls off): the connection goes on.
				return 0, err
			}
		}
	}
}

// feed judges b, read from the client.
func (g *gate) feed(b []byte) {
	for len(b) > 0 && g.refuse == nil {
		switch g.state {
		case gateHead, gateHold:
			g.raw = append(g.raw, b...)
			b = nil
			if g.state == gateHold {
				return
			}
			b = g.head()
		case gateBody:
			var done bool
			if b, done = g.length(b); done {
				g.bodyEnded()
			}
		case gateChunked:
			var done bool
			var err error
			b, done, err = g.chunked(b)
			if err != nil {
				// The server reads a body that breaks off here; the handler answers
				// the client's fault.
				g.err = errBadChunk
				return
			}
			if done {
				g.bodyEnded()
			}
		case gateTunnel:
			g.out = append(g.out, b...)
			b = nil
		}
	}
}

// smallReads are the buffers of the server's one-byte reads (see Read).
var smallReads = sync.Pool{New: func() any { b := make([]byte, 4096); return &b }}

// errBadChunk is the end of a chunked body that h1 refused.
var errBadChunk = errors.New("invalid chunked request body")

// head parses the head in g.raw; it returns what follows it, to be judged next.
func (g *gate) head() []byte {
	n, err := h1.ParseRequest(g.raw, g.f.cfg.Limits, &g.req)
	if err != nil {
		g.refuse = err.(*h1.Error)
		g.raw = g.raw[:0]
		g.headBegun(false)
		return nil
	}
	if n == 0 {
		g.headBegun(true)
		return nil
	}
	g.headBegun(false)
	g.out = appendHead(g.out, &g.req)
	rest := g.raw[n:]
	g.upgrade = g.req.Upgrade
	switch {
	case g.req.Framing == h1.BodyLength && g.req.ContentLength > 0:
		g.state, g.left = gateBody, g.req.ContentLength
	case g.req.Framing == h1.BodyChunked:
		g.state = gateChunked
		g.chunk.Reset()
	default:
		g.bodyEnded()
	}
	// rest is judged from a copy: raw is reused for the next head.
	tail := append([]byte(nil), rest...)
	g.raw = g.raw[:0]
	if g.state == gateHold {
		g.raw = append(g.raw, tail...)
		return nil
	}
	return tail
}

// headBegun notes whether a head is under way, and moves the read deadline with it.
func (g *gate) headBegun(underWay bool) {
	g.dmu.Lock()
	defer g.dmu.Unlock()
	switch {
	case underWay && g.headStart.IsZero():
		g.headStart = time.Now()
	case !underWay && !g.headStart.IsZero():
		g.headStart = time.Time{}
	default:
		return
	}
	_ = g.applyDeadline()
}

// SetReadDeadline sets the server's read deadline, or read_header's for a head under
// way when that is earlier.
func (g *gate) SetReadDeadline(t time.Time) error {
	g.dmu.Lock()
	defer g.dmu.Unlock()
	g.server = t
	return g.applyDeadline()
}

// SetDeadline sets both deadlines, the read one as SetReadDeadline does.
func (g *gate) SetDeadline(t time.Time) error {
	if err := g.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return g.SetReadDeadline(t)
}

// applyDeadline sets the earlier of the server's deadline and the head's. g.dmu must
// be held.
func (g *gate) applyDeadline() error {
	d := g.server
	if rh := g.f.cfg.Timeouts.ReadHeader; rh > 0 && !g.headStart.IsZero() {
		if hd := g.headStart.Add(rh); d.IsZero() || hd.Before(d) {
			d = hd
		}
	}
	return g.Conn.SetReadDeadline(d)
}

// bodyEnded follows a request's body, or a head without one: the next head comes,
// unless the request asked for an upgrade, whose answer decides (see upgraded).
func (g *gate) bodyEnded() {
	g.state = gateHead
	if g.upgrade {
		g.state = gateHold
	}
}

// appendHead appends the head the server reads for r: the request line and fields
// as h1 read them, one Content-Length.
func appendHead(dst []byte, r *h1.Request) []byte {
	dst = append(dst, r.Method...)
	dst = append(dst, ' ')
	dst = append(dst, r.Target...)
	if r.Minor == 0 {
		dst = append(dst, " HTTP/1.0\r\n"...)
	} else {
		dst = append(dst, " HTTP/1.1\r\n"...)
	}
	for _, h := range r.Headers {
		if exchange.ContentLength(h.Name) {
			continue
		}
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	if r.Framing == h1.BodyLength {
		dst = append(dst, "Content-Length: "...)
		dst = appendInt(dst, r.ContentLength)
		dst = append(dst, "\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func appendInt(dst []byte, n int64) []byte {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return append(dst, b[i:]...)
}

// decide records, from the handler, how an upgrade request was answered: as a tunnel
// (101), or not.
func (g *gate) decide(tunnel bool) {
	if g == nil {
		return
	}
	if tunnel {
		g.decided.Store(decidedTunnel)
	} else {
		g.decided.Store(decidedHTTP)
	}
}

// holding reports whether the request being served asked for an upgrade (h1's
// reading), which the handler must answer with decide.
func (g *gate) holding() bool { return g != nil && g.upgrade }

// upgraded applies how an upgrade request was answered: a tunnel passes what was held
// on as it is; otherwise the connection goes on with HTTP, and what was held is
// judged as such.
func (g *gate) upgraded(tunnel bool) {
	if g.state != gateHold {
		return
	}
	held := g.raw
	g.raw = nil
	if tunnel {
		g.state = gateTunnel
		g.out = append(g.out, held...)
		return
	}
	g.state = gateHead
	g.feed(held)
}

// answer writes the proxy's own answer to a request that reached no handler, and
// counts it as one.
func (g *gate) answer(a exchange.Answer) {
	_ = g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = g.Conn.Write(a.AppendHTTP1(make([]byte, 0, 256), true))
	g.f.refused(g, a.Status)
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
