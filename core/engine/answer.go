//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"strconv"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// failed handles a backend that failed before the answer's head reached the client:
// the request goes to another backend when that is safe (DESIGN section 3), else the
// client gets 502, or 504 for a timeout.
func (c *client) failed(err *exchange.Failure) {
	if c.answered { // the client has part of the answer: only closing can tell it
		if c.up != nil {
			c.up.midAnswer(err.Msg)
		}
		return
	}
	b := c.b
	c.record(b, 0, err.Msg)
	c.closeUp()
	c.b = nil
	retry := exchange.MayRetry(c.attempts, c.route.Upstream.Retries(), err.NotSent || !c.sent, c.req.Method, c.req.Framing == h1.BodyNone)
	c.tried = append(c.tried, b)
	if retry && c.worker {
		c.sent = false
		c.chunk.Reset()
		c.pick()
		return
	}
	c.keep = false
	c.replyFor(b, err.Answer())
}

// record ends the round trip to b: the backend's figures, passive health and the
// strategy hear how it went. status 0 means no answer came.
func (c *client) record(b *backend.Backend, status int, errMsg string) {
	c.l.e.cfg.Proxy.Record(c.picker, b, status, errMsg, c.l.ev.Now().Sub(c.sentAt))
}

// interim passes an informational answer (100 Continue, 103 Early Hints) on.
func (c *client) interim(head []byte) bool { return c.sendOut(head) }

// respond sends the answer's head; keepAfter is false when the backend's answer
// ends the client's connection too (its body runs until the backend closes).
func (c *client) respond(status int, head []byte) bool {
	c.answered, c.status = true, status
	return c.sendOut(head)
}

// body passes a piece of the answer's body on; false when the client is gone.
func (c *client) body(p []byte) bool {
	c.bytesOut += int64(len(p))
	return c.sendOut(p)
}

// sendOut writes to the client; when the client is gone the exchange is aborted.
func (c *client) sendOut(pieces ...[]byte) bool {
	if !c.send(pieces...) {
		c.gone()
		return false
	}
	return true
}

// complete ends an exchange whose answer went out whole. upOK is false when the
// backend connection cannot be reused.
func (c *client) complete() {
	b := c.b
	c.record(b, c.status, "")
	c.up, c.b = nil, nil
	c.finish(b.Answers, b.URL)
}

// finish releases the request's worker, counts and logs its answer, and readies the
// connection for the next request, or closes it.
func (c *client) finish(answers *backend.Answers, url string) {
	if c.worker {
		c.worker = false
		c.l.e.pool.Release()
	}
	var pool string
	if c.route != nil {
		pool = c.route.Pool() // a request routed to a pool names it, answered by a backend or not
	}
	proto := "HTTP/1.1"
	if c.req.Minor == 0 {
		proto = "HTTP/1.0"
	}
	c.l.e.cfg.Proxy.Finish(answers, &exchange.Entry{Start: c.start, Client: c.ip, Method: c.req.Method, Path: c.req.Target, Proto: proto,
		Status: c.status, Backend: url, Pool: pool, In: c.bytesIn, Out: c.bytesOut, Duration: c.l.ev.Now().Sub(c.start), Attempts: c.attempts})
	c.picker = nil
	c.route = nil
	c.served = true
	c.view = strategy.Request{}
	clear(c.triedArr[:])
	c.st = stIdle
	c.pin = 0
	if c.l.draining {
		c.keep = false
	}
	if c.r == c.w {
		c.r, c.w = 0, 0
		c.releaseBuf()
	}
	if !c.keep {
		c.closing = true
		c.timer.Stop()
		if len(c.out) == 0 {
			c.close()
		} else {
			c.setTimer(phBodyOut) // a client that takes nothing more is not waited for
		}
		return // closed once the answer is written
	}
	c.setTimer(phIdle)
	c.resume() // reading may have stopped on a full buffer of pipelined requests
	if c.r < c.w || c.eof {
		c.readHead() // a pipelined request, or the end
	}
}

// reply answers with the proxy's own JSON error and ends the exchange.
func (c *client) reply(a exchange.Answer) {
	c.replyBody(a)
	c.finish(c.l.e.cfg.Proxy.OwnAnswers(), "")
}

// replyFor answers an exchange that failed on b with the proxy's own error.
func (c *client) replyFor(b *backend.Backend, a exchange.Answer) {
	c.replyBody(a)
	c.finish(b.Answers, b.URL)
}

// replyRoute answers with a route's own reply (respond, or a redirect to location).
func (c *client) replyRoute(rp *exchange.Reply, location []byte) {
	c.status = rp.Status
	c.skipBody()
	head := equalMethod(c.req.Method, "HEAD")
	if !head && !rp.Bodiless() {
		c.bytesOut = int64(len(rp.Body))
	}
	connection := ""
	switch {
	case !c.keep:
		connection = "close"
	case c.req.Minor == 0:
		connection = "keep-alive" // an HTTP/1.0 client keeps its connection when told so
	}
	c.sendOut(rp.AppendHTTP1(make([]byte, 0, 128+len(rp.Body)+len(location)), location, head, connection))
	c.finish(c.l.e.cfg.Proxy.OwnAnswers(), "")
}

func (c *client) replyBody(a exchange.Answer) {
	c.status = a.Status
	c.skipBody()
	c.bytesOut = int64(len(a.Body()))
	c.sendOut(a.AppendHTTP1(make([]byte, 0, 256), !c.keep))
}

// skipBody drops the request body the proxy answers without reading: a connection
// whose request body is not all here cannot carry another request.
func (c *client) skipBody() {
	if c.st == stSending || c.st == stAwaiting {
		return // it went to a backend already
	}
	switch c.req.Framing {
	case h1.BodyLength:
		n := min(int64(len(c.unread())), c.req.ContentLength)
		c.consume(int(n))
		if n < c.req.ContentLength {
			c.keep = false
		}
	case h1.BodyChunked:
		n, done, err := c.chunk.Scan(c.unread())
		c.consume(n)
		if !done || err != nil {
			c.keep = false
		}
	}
}

// answerStatus asks for the status JSON and answers the status path with it once it
// comes. The JSON of a data-plane process comes from the control plane, one local
// round trip away: the loop does not wait for it.
func (c *client) answerStatus() {
	c.st = stStatus
	c.picker = nil
	c.setTimer(phNone) // the question is bounded by whoever answers it
	c.pickSeq++
	seq := c.pickSeq
	c.l.e.cfg.Status(func(body []byte) {
		c.l.ev.Execute(func() {
			if c.st == stStatus && c.pickSeq == seq {
				c.sendStatus(body)
			}
		})
	})
}

// sendStatus answers the status path with body.
func (c *client) sendStatus(body []byte) {
	if c.l.draining {
		c.keep = false
	}
	head := make([]byte, 0, 128)
	head = append(head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: "...)
	head = strconv.AppendInt(head, int64(len(body)), 10)
	if !c.keep {
		head = append(head, "\r\nConnection: close"...)
	}
	head = append(head, "\r\n\r\n"...)
	c.status, c.bytesOut = 200, int64(len(body))
	c.sendOut(head, body)
	if c.st != stClosed {
		c.finish(c.l.e.cfg.Proxy.OwnAnswers(), "")
	}
}

// clientFault ends an exchange the client broke (a malformed or cut-short body): the
// backend's standing does not move, and the client gets status unless it left.
func (c *client) clientFault(a exchange.Answer) {
	c.abandon()
	c.keep = false
	if c.eof && c.rerr != nil || c.werr != nil || c.answered {
		c.status = 0
		c.finish(c.l.e.cfg.Proxy.OwnAnswers(), "")
		c.close()
		return
	}
	c.st = stIdle // the body is not the backend's any more
	c.reply(a)
}

// abandon lets go of the exchange's backend without charging it, and closes the
// connection to it.
func (c *client) abandon() {
	if b := c.b; b != nil {
		b.Abandon()
		c.b = nil
	}
	c.closeUp()
}

// closeUp closes the exchange's backend connection, if any.
func (c *client) closeUp() {
	if u := c.up; u != nil {
		u.c, c.up = nil, nil
		u.closeFD()
	}
}

// abort ends the exchange of a client that went away: nothing is held for it, and
// nothing is charged to the backend.
func (c *client) abort() {
	c.release()
	c.close()
}

// release lets go of what the exchange holds: its backend's in-flight slot (not
// counted against it), its backend connection, its worker or its place in the queue.
func (c *client) release() {
	c.abandon()
	// Queued and granted meanwhile: the grant, on its way to the loop, finds the
	// exchange gone and gives the worker back itself.
	if c.st == stQueued {
		c.l.e.pool.Cancel(c.waiter)
	}
	c.keep = false
	if c.worker {
		c.worker = false
		c.l.e.pool.Release()
	}
	c.st = stIdle
}

// gone is a client whose connection failed under a write: it left.
func (c *client) gone() {
	if c.st == stIdle {
		c.close()
		return
	}
	c.abort()
}

// close closes the client connection.
func (c *client) close() {
	if c.st == stClosed {
		return
	}
	if c.st != stIdle {
		c.release()
	}
	c.st = stClosed
	c.timer.Stop()
	c.closeFD()
	delete(c.l.conns, c)
	c.l.clients.Add(-1)
}

// expired runs when the client's timer fires.
func (c *client) expired() {
	switch c.phase {
	case phHeader:
		if c.r < c.w {
			c.keep = false
			c.replyBody(exchange.HeadTimeout)
			c.finish(c.l.e.cfg.Proxy.OwnAnswers(), "")
			return
		}
		c.close()
	case phIdle:
		c.close()
	case phQueue:
		if !c.l.e.pool.Cancel(c.waiter) {
			return // granted: the grant is on its way to the loop
		}
		c.st = stIdle
		c.keep = false
		c.reply(exchange.QueueTimeout)
	case phConnect:
		c.failed(exchange.ErrConnectTO)
	case phResponse:
		if c.st == stAwaiting || c.st == stSending {
			c.failed(exchange.ErrTimeout)
		}
	case phBodyIn:
		c.clientFault(exchange.BodyTimeout)
	case phBackendIn:
		c.failed(exchange.ErrTimeout)
	case phBodyOut:
		c.abort() // the client takes nothing more: it is not the backend's failure
	case phBackendOut:
		if c.up != nil {
			c.up.midAnswer("timed out in the middle of its answer")
		}
	case phTunnel:
		c.endTunnel()
	}
}
