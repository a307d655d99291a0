//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"errors"
	"net/netip"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/evloop"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// upstream is one connection to a backend, serving one client's exchange at a time
// and pooled on its loop in between. A pooled connection on which anything happens
// (bytes nobody asked for, the backend closing it) is closed at once, so it is never
// reused unsound (DESIGN section 11).
type upstream struct {
	sock
	b          *backend.Backend
	c          *client        // nil while pooled
	addr       netip.AddrPort // the backend's address, Host for a request that has none
	timer      *evloop.Timer
	connecting bool
	tunnel     bool
	head       bool // the request was HEAD: the answer has no body
	inBody     bool // the answer's head went on; its body follows
	resp       h1.Response
	left       int64 // BodyLength: body bytes still to come
	chunk      h1.Chunked
	dechunk    bool                 // the client speaks HTTP/1.0: a chunked body goes on as plain bytes
	bridge     *bridge              // an https or h2c backend's: the bridge that carries it (tls.go)
	bridgeUp   bool                 // the bridge reached the backend
	tls        *exchange.BackendTLS // an https backend's: the settings it was verified with
}

// sound reports whether nothing arrived on the pooled connection: no byte, no end
// of stream. It reads nothing.
func (u *upstream) sound() bool {
	return evloop.Peek(u.fd)
}

// dial opens a connection to b, a backend of the pool up, on l; it completes with a
// Writable event.
func (l *loop) dial(b *backend.Backend, up *exchange.Upstream) (*upstream, error) {
	ap, err := dialAddr(b)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(b.Key, "https:"):
		return l.dialTLS(b, ap, up.TLS())
	case strings.HasPrefix(b.Key, "h2c:"):
		return l.dialH2C(b, ap)
	}
	fd, err := evloop.Dial(ap)
	if err != nil {
		return nil, err
	}
	u := &upstream{sock: sock{l: l, fd: fd}, b: b, connecting: true}
	u.addr = ap
	u.timer = l.ev.NewTimer(u.idleExpired)
	if err := l.ev.Add(fd, evloop.Readable|evloop.Writable, u); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return u, nil
}

// idleExpired closes a pooled connection unused for the idle timeout.
func (u *upstream) idleExpired() {
	if u.c == nil && u.fd >= 0 {
		u.l.dropIdle(u)
		u.closeIdle()
	}
}

// closeIdle closes a connection that carries no exchange with a reset, as HAProxy
// closes the idle server connections it lets go: nothing is lost (no request is on
// it), and neither side keeps it in TIME_WAIT or exchanges FINs for it, which under
// "safe" reuse and a connection per request would be a close per request.
func (u *upstream) closeIdle() {
	if u.fd >= 0 {
		_ = unix.SetsockoptLinger(u.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	}
	u.closeFD()
}

// expectHead readies u for the answer to a new request.
func (u *upstream) expectHead(head bool) {
	u.head, u.inBody, u.left, u.wrote = head, false, 0, false
	u.chunk.Reset()
}

// OnEvents is told of the backend socket's readiness.
func (u *upstream) OnEvents(ev evloop.Events) {
	if u.fd < 0 {
		return
	}
	c := u.c
	if c == nil { // pooled: anything now makes it unsound
		if ev&evloop.Readable != 0 {
			u.l.dropIdle(u)
			u.closeIdle()
			u.b.CountStale()
		}
		return
	}
	if u.connecting {
		if u.bridge != nil && !u.bridgeUp {
			return // the bridge is still reaching the backend (see bridged)
		}
		if err := evloop.ConnectError(u.fd); err != nil {
			if errors.Is(err, unix.EINPROGRESS) || errors.Is(err, unix.EALREADY) {
				return
			}
			c.failed(exchange.ErrConnect)
			return
		}
		u.connecting = false
		if c.st == stConnecting {
			c.transmit(u)
			return
		}
		// The request was written before the connection was up (see use) and
		// waits in u.out: it leaves below, and its answer is timed from now.
		c.setTimer(phResponse)
	}
	if ev&evloop.Writable != 0 && len(u.out) > 0 {
		if !u.flush() {
			if u.werr != nil {
				u.failWrite()
			}
			return
		}
		if c.st == stSending {
			c.resume()
			c.forwardBody()
		} else if c.st == stTunnel {
			c.resume()
			c.tunnelOut()
		}
		if u.c != c || u.fd < 0 {
			return
		}
	}
	if ev&evloop.Readable != 0 {
		u.fill(ev&evloop.Hangup != 0)
		u.process()
	}
}

// failWrite handles a write to the backend that failed.
func (u *upstream) failWrite() {
	c := u.c
	if c == nil {
		return
	}
	if c.answered || c.st == stTunnel {
		u.midAnswer("backend connection failed")
		return
	}
	c.failed(exchange.ErrConnReset)
}

// process reads the answer: its head, then its body, passing both on.
func (u *upstream) process() {
	for u.c != nil && u.fd >= 0 {
		c := u.c
		if u.tunnel {
			p := u.unread()
			if len(p) > 0 {
				if !c.sendOut(p) {
					return
				}
				u.consume(len(p))
				c.setTimer(phTunnel)
			}
			if u.eof {
				c.tunnelEnds()
			} else if c.congested() {
				u.pause()
			}
			return
		}
		if !u.inBody {
			if !u.readHead() {
				return
			}
			continue
		}
		p, used, done, err := u.bodyPiece()
		if len(p) > 0 && !c.body(p) {
			return
		}
		if used > 0 {
			u.consume(used)
			c.setTimer(phBackendOut)
		}
		switch {
		case err != nil:
			u.midAnswer("malformed chunked answer")
			return
		case done:
			u.complete()
			return
		case u.eof && u.r == u.w:
			if u.resp.Framing == h1.BodyUntilClose && u.rerr == nil {
				u.complete()
			} else {
				u.midAnswer("connection closed before a complete answer")
			}
			return
		case c.congested():
			u.pause() // resumed when the client takes more
			c.setTimer(phBodyOut)
			return
		case used == 0:
			u.resume() // the buffer may have filled up: all of it went on
			return
		}
	}
}

// readHead parses the answer's head and passes it on; false when more is needed or
// the exchange ended.
func (u *upstream) readHead() bool {
	c := u.c
	buf := u.unread()
	n, err := h1.ParseResponse(buf, c.l.e.cfg.Limits, u.head, &u.resp)
	if err != nil {
		u.c.failed(exchange.ErrMalformed)
		return false
	}
	if n == 0 {
		if u.eof {
			if u.rerr != nil {
				c.failed(exchange.ErrConnReset)
			} else {
				c.failed(exchange.ErrClosedEOF)
			}
		}
		return false
	}
	r := &u.resp
	if r.Interim() {
		ok := true
		if c.req.Minor > 0 { // HTTP/1.0 has no interim answers
			head := appendResponseHead(u.l.scratch[:0], buf[:n], r, nil, true, false, false)
			u.l.scratch = head[:0]
			ok = c.interim(head)
		}
		u.consume(n)
		return ok
	}
	if r.Status == 101 {
		if !c.req.Upgrade {
			c.failed(exchange.ErrMalformed)
			return false
		}
		head := appendResponseHead(u.l.scratch[:0], buf[:n], r, &c.route.Response, true, false, true)
		u.l.scratch = head[:0]
		u.consume(n)
		if !c.respond(101, head) {
			return false
		}
		c.startTunnel()
		return c.st == stTunnel
	}
	// An answer that comes before the request body is all here ends the connection:
	// the rest of the body would be read as a request.
	keep := c.keep && r.Framing != h1.BodyUntilClose && !c.l.draining && c.bodyDone()
	// HTTP/1.0 has no chunked coding: such a client gets the body's bytes, ended by
	// the connection's close.
	u.dechunk = r.Framing == h1.BodyChunked && c.req.Minor == 0
	if u.dechunk {
		keep = false
	}
	c.keep = keep
	head := appendResponseHead(u.l.scratch[:0], buf[:n], r, &c.route.Response, keep, c.req.Minor == 0, false)
	if u.dechunk {
		head = dropField(head, "transfer-encoding")
	}
	u.l.scratch = head[:0]
	u.consume(n)
	u.inBody = true
	u.left = r.ContentLength
	// The body bytes at hand leave with the head, in one write.
	if u.dechunk { // the head is copied out of the scratch space the body will use
		head = append([]byte(nil), head...)
	}
	p, used, done, perr := u.bodyPiece()
	c.answered, c.status = true, r.Status
	c.setTimer(phBackendOut)
	c.bytesOut += int64(len(p))
	if !c.sendOut(head, p) {
		return false
	}
	u.consume(used)
	if perr != nil {
		u.midAnswer("malformed chunked answer")
		return false
	}
	if done || r.Framing == h1.BodyNone {
		u.complete()
		return false
	}
	return true
}

// bodyPiece is what goes to the client of the answer's body at hand, up to its end:
// p, made of the first used bytes read; done reports the end.
func (u *upstream) bodyPiece() (p []byte, used int, done bool, err error) {
	buf := u.unread()
	switch u.resp.Framing {
	case h1.BodyNone:
		return nil, 0, true, nil
	case h1.BodyLength:
		n := min(int64(len(buf)), u.left)
		u.left -= n
		return buf[:n], int(n), u.left == 0, nil
	case h1.BodyChunked:
		if u.dechunk {
			return u.dechunked(buf)
		}
		return u.chunk.Forward(u.l.rewriteBuf(), buf)
	}
	return buf, len(buf), false, nil // until close
}

// dechunked returns the data of the chunked body at the start of buf, without its
// framing, in the loop's scratch space, and how many bytes of buf it took.
func (u *upstream) dechunked(buf []byte) (data []byte, used int, done bool, err error) {
	data = u.l.scratch[:0]
	for used < len(buf) && !u.chunk.Done() {
		if in, left := u.chunk.InData(); in {
			k := int(min(int64(len(buf)-used), left))
			data = append(data, buf[used:used+k]...)
			m, _, _ := u.chunk.Scan(buf[used : used+k])
			used += m
			continue
		}
		m, _, err := u.chunk.Scan(buf[used : used+1])
		if err != nil {
			return data, used, false, err
		}
		used += m
	}
	u.l.scratch = data[:0]
	return data, used, u.chunk.Done(), nil
}

// complete ends an exchange whose answer went out whole: u goes back to the pool
// when it can carry another exchange.
func (u *upstream) complete() {
	c := u.c
	reusable := u.resp.KeepAlive && c.bodyDone() && u.r == u.w && !u.eof && u.werr == nil && len(u.out) == 0
	if !c.bodyDone() {
		c.keep = false // the rest of the request body would be read as a request
	}
	u.c, c.up = nil, nil
	if reusable {
		u.l.putIdle(u)
	} else {
		u.closeFD()
	}
	c.complete()
}

// midAnswer ends an exchange whose backend failed after the answer's head went to
// the client: the backend is charged, and the client's connection closes, which is
// all that can still tell it.
func (u *upstream) midAnswer(why string) {
	c := u.c
	b := c.b
	c.record(b, c.status, "backend failed: "+why)
	u.c, c.up, c.b = nil, nil, nil
	u.closeFD()
	c.keep = false
	c.finish(b.Answers, b.URL)
	c.close()
}
