//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"net/netip"
	"strings"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/evloop"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// state is where a client connection is in its current exchange.
type state uint8

const (
	stIdle       state = iota // waiting for a request head
	stQueued                  // waiting for a worker
	stPicking                 // the strategy is asked for a backend
	stStatus                  // the status JSON is asked for
	stConnecting              // a backend connection is being opened
	stSending                 // the head went to the backend; the body follows
	stAwaiting                // the request went whole; the answer is awaited or streams
	stTunnel                  // upgraded: bytes pass both ways
	stClosed
)

// phase is what the client's timer stands for.
type phase uint8

const (
	phNone       phase = iota
	phHeader           // reading a request head (read_header)
	phIdle             // between requests (idle)
	phQueue            // waiting for a worker (queue_timeout)
	phConnect          // opening a backend connection (connect)
	phResponse         // waiting for the answer's head (response_header)
	phBodyIn           // the client sends its request body no further (body_idle)
	phBodyOut          // the client takes the answer's body no further (body_idle)
	phBackendIn        // the backend takes the request body no further (response_header)
	phBackendOut       // the backend sends its answer's body no further (response_header)
	phTunnel           // an upgraded connection is silent (idle)
)

// client is one client connection and the exchange it is in.
type client struct {
	sock
	remote  netip.AddrPort
	ip      []byte // the client's address as text
	timer   *evloop.Timer
	phase   phase
	st      state
	keep    bool // the connection stays open after this answer
	served  bool // a request of this connection was answered: the next is not its first
	closing bool // closes once its last answer is written

	req      h1.Request
	start    time.Time
	worker   bool // holds a pool worker
	waiter   pool.Waiter
	picker   strategy.Picker
	route    *exchange.Route // the request's route, from when it is routed to its end
	view     strategy.Request
	tried    []*backend.Backend
	triedArr [4]*backend.Backend
	b        *backend.Backend
	up       *upstream
	sentAt   time.Time // when the request went to b
	left     int64     // BodyLength: request body bytes still to forward
	chunk    h1.Chunked
	chunkErr error // the request body's chunked framing is broken
	sent     bool  // a byte of the request was written to a backend connection
	answered bool  // the answer's head went to the client
	bytesIn  int64 // request body bytes passed on
	bytesOut int64 // answer body bytes passed on
	status   int
	attempts int
	hdrs     headerList
	pickSeq  uint64 // picks and status questions asked so far; an answer to an older one is dropped
}

func (l *loop) open(fd int, remote netip.AddrPort) {
	c := &client{sock: sock{l: l, fd: fd}, remote: remote}
	c.ip = remote.Addr().Unmap().AppendTo(nil)
	c.timer = l.ev.NewTimer(c.expired)
	if err := l.ev.Add(fd, evloop.Readable|evloop.Writable, c); err != nil {
		c.sock.closeFD()
		return
	}
	l.conns[c] = struct{}{}
	l.clients.Add(1)
	c.setTimer(phHeader)
}

// settings are the live request-path settings.
func (c *client) settings() *exchange.Settings { return c.l.e.cfg.Proxy.Settings() }

func (c *client) setTimer(p phase) {
	c.phase = p
	t := c.l.e.cfg.Timeouts
	var d time.Duration
	switch p {
	case phNone:
		c.timer.Stop()
		return
	case phHeader:
		d = t.ReadHeader
	case phIdle:
		d = t.Idle
	case phQueue:
		d = c.l.e.pool.QueueTimeout()
	case phConnect:
		d = t.Connect
	case phResponse, phBackendIn, phBackendOut:
		d = t.ResponseHeader
	case phBodyIn, phBodyOut:
		d = t.BodyIdle
	case phTunnel:
		d = c.settings().Idle
	}
	if d <= 0 {
		c.timer.Stop()
		return
	}
	c.timer.Reset(d)
}

// OnEvents is told of the client socket's readiness.
func (c *client) OnEvents(ev evloop.Events) {
	if c.st == stClosed {
		return
	}
	if ev&evloop.Writable != 0 && len(c.out) > 0 {
		before := len(c.out)
		if !c.flush() && c.werr != nil {
			c.gone()
			return
		}
		if len(c.out) == 0 {
			c.drained()
		} else if len(c.out) < before && c.phase == phBodyOut {
			c.setTimer(phBodyOut) // slow, but taking it
		}
	}
	if ev&evloop.Readable != 0 {
		c.fill(ev&evloop.Hangup != 0)
		c.advance()
	}
}

// drained runs when everything written to the client has left.
func (c *client) drained() {
	if c.st == stClosed {
		return
	}
	if c.closing {
		c.close()
		return
	}
	if u := c.up; u != nil && u.paused {
		u.resume()
		if c.answered && c.st != stTunnel {
			c.setTimer(phBackendOut)
		}
	}
	if c.paused && c.st != stSending && c.st != stTunnel { // a full buffer of pipelined requests
		c.resume()
	}
	if c.st == stTunnel && c.up != nil && c.up.eof {
		c.tunnelEnds() // what the backend sent before its end has left
	}
}

// advance moves the exchange on with what was read.
func (c *client) advance() {
	if c.closing { // the last answer is on its way out: what follows is not read
		c.consume(c.w - c.r)
		if c.eof {
			c.close()
		}
		return
	}
	switch c.st {
	case stIdle:
		c.readHead()
	case stSending:
		c.forwardBody()
	case stTunnel:
		c.tunnelOut()
	case stStatus:
		// The status JSON is on its way. A client that only finished sending (a
		// half-close, as `nc -N` does) still gets it; one whose connection failed
		// has left.
		if c.eof && c.r == c.w {
			if c.rerr != nil {
				c.abort()
				return
			}
			c.keep = false
		}
	default:
		// Awaiting an answer: bytes are the next request, kept for later. A client
		// whose connection failed has left: its exchange ends. One that only
		// closed its side (a half-close, or a close that a write will find out)
		// still gets its answer, then the connection closes (HAProxy's default).
		if c.eof && c.r == c.w {
			if c.rerr != nil {
				c.abort()
				return
			}
			c.keep = false
		}
	}
}

// readHead parses a request head from what was read.
func (c *client) readHead() {
	if c.r > 0 && c.r < c.w { // a pipelined request: its head starts the buffer
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	buf := c.unread()
	if len(buf) == 0 {
		if c.eof || c.l.draining {
			c.close()
		}
		return
	}
	if c.phase == phIdle {
		c.setTimer(phHeader)
	}
	n, err := h1.ParseRequest(buf, c.l.e.cfg.Limits, &c.req)
	if err != nil {
		c.keep = false
		c.reply(exchange.Malformed(err.(*h1.Error)))
		return
	}
	if n == 0 {
		if c.eof {
			c.close() // a head cut short: there is nobody to answer
		}
		return
	}
	c.pin, c.r = n, n // the head stays in place until the answer: retries rebuild from it
	c.begin()
}

// begin starts the exchange of the parsed request.
func (c *client) begin() {
	c.start = c.l.ev.Now()
	c.keep = c.req.KeepAlive && !c.l.draining
	c.bytesIn, c.bytesOut, c.status, c.attempts, c.sent, c.answered = 0, 0, 0, 0, false, false
	c.tried = c.triedArr[:0]
	c.chunk.Reset()
	c.chunkErr = nil
	s := c.settings()
	if (equalMethod(c.req.Method, "GET") || equalMethod(c.req.Method, "POST")) && string(exchange.Path(c.req.Target)) == s.StatusPath {
		c.skipBody()
		c.answerStatus()
		return
	}
	if c.req.Framing == h1.BodyLength {
		c.left = c.req.ContentLength
	}
	// The host the request goes on with (an absolute target's authority, else Host)
	// and its path choose the route; a route the proxy answers itself takes no
	// worker.
	host, target := c.req.Host, c.req.Target
	if t, authority, ok := exchange.OriginForm(target); ok {
		host, target = authority, t
	}
	c.hdrs = c.req.Headers
	c.route = c.l.e.cfg.Proxy.Table().Route(c.req.Method, host, exchange.Path(target), &c.hdrs)
	switch c.route.Action {
	case exchange.NoRoute:
		c.reply(exchange.NoRouteAnswer)
		return
	case exchange.DoRespond:
		c.replyRoute(&c.route.Reply, nil)
		return
	case exchange.DoRedirect:
		rd := &c.route.Redirect
		c.replyRoute(&exchange.Reply{Status: rd.Status}, rd.AppendLocation(make([]byte, 0, 128), host, target))
		return
	}
	c.setTimer(phNone)
	ok, w, err := c.l.e.pool.AcquireAsync(c.grantedElsewhere)
	switch {
	case err != nil:
		c.keep = false
		c.reply(exchange.QueueFull)
	case ok:
		c.worker = true
		c.pick()
	default:
		c.st, c.waiter = stQueued, w
		c.setTimer(phQueue)
	}
}

// grantedElsewhere is the pool's news that a queued request has a worker, from
// whichever goroutine released it.
func (c *client) grantedElsewhere() {
	c.l.ev.Execute(func() {
		if c.st != stQueued { // gone meanwhile: give the worker back
			c.l.e.pool.Release()
			return
		}
		c.worker = true
		c.pick()
	})
}

// pick chooses a backend and sends the request to it.
func (c *client) pick() {
	u := c.route.Upstream
	c.picker = u.Picker()
	c.view = strategy.Request{Method: c.req.Method, Host: c.req.Host, Path: exchange.Path(c.req.Target), RemoteAddr: c.ip, Header: &c.hdrs}
	cands := u.Backends().Snapshot().Candidates
	if ap, ok := c.picker.(strategy.AsyncPicker); ok {
		// A plugin that must be asked answers later: the loop serves the others
		// meanwhile, and the picks of one pass go out together.
		c.pickSeq++
		seq := c.pickSeq
		b, pending, err := ap.PickAsync(&c.view, cands, c.tried, func(b *backend.Backend, err error) {
			c.l.ev.Execute(func() {
				if c.st == stPicking && c.pickSeq == seq {
					c.use(b, err)
				}
			})
		})
		if pending {
			c.st = stPicking
			return
		}
		c.use(b, err)
		return
	}
	b, err := c.picker.Pick(&c.view, cands, c.tried)
	c.use(b, err)
}

// use sends the request to the picked backend, or answers 503 when there is none.
func (c *client) use(b *backend.Backend, err error) {
	if err != nil {
		c.keep = false
		c.reply(exchange.NoBackend(err))
		return
	}
	if c.req.Upgrade && strings.HasPrefix(b.Key, "h2c:") {
		// Not the backend's fault: the request needs what it does not speak.
		c.keep = false
		c.reply(exchange.ErrH2CUpgrade.Answer())
		return
	}
	c.b = b
	c.attempts++
	b.Start()
	c.sentAt = c.l.ev.Now()
	// A connection's first request goes on a backend connection of its own unless
	// reuse is "always": one that another client used last may still bring that
	// client's late answer (DESIGN section 11, HAProxy's http-reuse safe).
	if c.served || c.settings().ReuseAlways {
		if u := c.l.takeIdle(b, c.route.Upstream.TLS()); u != nil {
			c.transmit(u)
			return
		}
	}
	u, err := c.l.dial(b, c.route.Upstream)
	if err != nil {
		c.failed(exchange.ErrConnect)
		return
	}
	u.c, c.up = c, u
	c.st = stConnecting
	c.setTimer(phConnect)
	if writeWhileConnecting && c.req.Framing == h1.BodyNone && u.bridge == nil {
		// A connection to a nearby backend is often up by the time connect
		// returns: the request is written at once, and if the connection is not
		// up yet it waits in u.out until it is (HAProxy does the same). This
		// saves a pass of the loop per new connection. A request with a body
		// waits, so that its timers and backpressure start with the connection.
		c.transmit(u)
		if c.up == u && u.connecting {
			if u.wrote {
				u.connecting = false
			} else {
				c.setTimer(phConnect)
			}
		}
	}
}

// transmit writes the request head, and the body bytes at hand, to u.
func (c *client) transmit(u *upstream) {
	u.c, c.up = c, u
	// The head is built in the loop's scratch space: what a write does not take at
	// once is copied, so that idle connections hold no head.
	var fallback []byte
	if len(c.req.Host) == 0 { // HTTP/1.0 without Host: the backend's address stands in
		fallback = u.addr.AppendTo(nil)
	}
	head := appendRequestHead(c.l.scratch[:0], &c.req, c.route, c.ip, fallback)
	c.l.scratch = head[:0]
	u.expectHead(equalMethod(c.req.Method, "HEAD"))
	c.sent = true
	c.st = stSending
	c.setTimer(phResponse)
	if c.req.Framing == h1.BodyNone {
		c.st = stAwaiting
		if !u.send(head) {
			c.failed(sendError(u))
		}
		return
	}
	body, used := c.bodyPiece()
	if !u.send(head, body) {
		c.failed(sendError(u))
		return
	}
	c.consumeBody(used)
	c.forwardBody()
}

// sendError is the failure of a request's first write to u: nothing sent when the
// connection took no byte of it.
func sendError(u *upstream) *exchange.Failure {
	if u.wrote {
		return exchange.ErrConnReset
	}
	return exchange.ErrNotSent
}

// bodyPiece is what goes to the backend of the request body at hand, up to its end:
// p, made of the first used bytes read (a chunked body loses its extensions and
// framing trailers on the way, see h1.Chunked.Forward).
func (c *client) bodyPiece() (p []byte, used int) {
	buf := c.unread()
	switch c.req.Framing {
	case h1.BodyLength:
		n := int(min(int64(len(buf)), c.left))
		return buf[:n], n
	case h1.BodyChunked:
		p, n, _, err := c.chunk.Forward(c.l.rewriteBuf(), buf)
		if err != nil {
			c.chunkErr = err
		}
		return p, n
	}
	return nil, 0
}

// consumeBody marks used bytes of the body forwarded.
func (c *client) consumeBody(used int) {
	c.consume(used)
	c.bytesIn += int64(used)
	if c.req.Framing == h1.BodyLength {
		c.left -= int64(used)
	}
}

// bodyDone reports whether the whole request body went to the backend.
func (c *client) bodyDone() bool {
	switch c.req.Framing {
	case h1.BodyLength:
		return c.left == 0
	case h1.BodyChunked:
		return c.chunk.Done()
	}
	return true
}

// forwardBody passes request body bytes on as they come.
func (c *client) forwardBody() {
	u := c.up
	for !c.bodyDone() {
		if c.chunkErr != nil {
			c.clientFault(exchange.BodyChunked)
			return
		}
		if u.congested() {
			c.pause() // resumed when the backend takes more
			c.bodyTimer(phBackendIn)
			return
		}
		p, used := c.bodyPiece()
		if used == 0 {
			if c.chunkErr != nil {
				continue
			}
			if c.eof {
				c.clientFault(exchange.BodyCut)
				return
			}
			c.bodyTimer(phBodyIn)
			c.resume() // the buffer may have filled up: all of it went on
			return
		}
		if !u.send(p) {
			c.failed(exchange.ErrConnReset)
			return
		}
		c.consumeBody(used)
		c.bodyTimer(phBodyIn)
	}
	c.st = stAwaiting
	c.bodyTimer(phResponse)
}

// bodyTimer sets the timer for the request body's phase p, unless the answer is
// already streaming: then the backend's silence is what is timed.
func (c *client) bodyTimer(p phase) {
	if !c.answered {
		c.setTimer(p)
	}
}
