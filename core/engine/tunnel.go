//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

// An upgraded connection (WebSocket): once the backend answered 101, bytes pass both
// ways as they come, each side read only as fast as the other takes them. A side
// that closes its direction has its end passed on once the other has read all it
// sent (a FIN for a FIN), and the other direction stays open; the tunnel ends when
// both directions have ended, when a connection fails, or when both stay silent for
// the idle timeout (DESIGN section 11).

// startTunnel switches the exchange to passing bytes both ways.
func (c *client) startTunnel() {
	c.st = stTunnel
	c.up.tunnel = true
	if c.up.bridge != nil {
		c.up.bridge.tunnel.Store(true)
	}
	if c.worker { // an open tunnel holds no worker, only its backend's in-flight slot
		c.worker = false
		c.l.e.pool.Release()
	}
	c.pin = 0 // the request head is no longer needed
	c.setTimer(phTunnel)
	c.tunnelOut()
	if u := c.up; u != nil && c.st == stTunnel {
		u.process()
	}
}

// tunnelOut passes what the client sent to the backend.
func (c *client) tunnelOut() {
	u := c.up
	if u == nil {
		return
	}
	if p := c.unread(); len(p) > 0 {
		if !u.send(p) {
			c.endTunnel()
			return
		}
		c.consume(len(p))
		c.setTimer(phTunnel)
	}
	if c.eof {
		c.tunnelEnds()
		return
	}
	if u.congested() {
		c.pause()
	}
}

// tunnelEnds passes on the end of each direction whose sender has closed it, once
// the receiver has everything before it, and ends the tunnel when both directions
// have ended or either connection failed.
func (c *client) tunnelEnds() {
	u := c.up
	if c.st != stTunnel || u == nil {
		return
	}
	if c.eof && c.rerr != nil || u.eof && u.rerr != nil || c.werr != nil || u.werr != nil {
		c.endTunnel()
		return
	}
	if c.eof && c.r == c.w && len(u.out) == 0 {
		u.shutWrite()
	}
	if u.eof && u.r == u.w && len(c.out) == 0 {
		c.shutWrite()
	}
	if c.shut && u.shut {
		c.endTunnel()
	}
}

// endTunnel closes both sides of an upgraded connection once the client has what
// the backend sent.
func (c *client) endTunnel() {
	if c.st != stTunnel {
		return
	}
	b, u := c.b, c.up
	c.record(b, 101, "")
	u.c, c.up, c.b = nil, nil, nil
	u.closeFD()
	c.keep = false
	c.finish(b.Answers, b.URL)
}
