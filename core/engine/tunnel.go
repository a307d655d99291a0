//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

// An upgraded connection (WebSocket): once the backend answered 101, bytes pass both
// ways as they come, each side read only as fast as the other takes them, until
// either side closes or both stay silent for the idle timeout.

// startTunnel switches the exchange to passing bytes both ways.
func (c *client) startTunnel() {
	c.st = stTunnel
	c.up.tunnel = true
	if c.worker { // an open tunnel holds no worker, only its backend's in-flight slot
		c.worker = false
		c.l.e.cfg.Pool.Release()
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
		c.endTunnel()
		return
	}
	if u.congested() {
		c.pause()
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
