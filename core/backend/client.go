package backend

import (
	"errors"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// newClient returns the keep-alive connection pool to the backend at key
// (scheme://host:port). With pooled false its connections each carry one request
// (see Backend.DoFresh): they are never checked before reuse.
func newClient(key string, cc ClientConfig, pooled bool) *fasthttp.HostClient {
	isTLS := strings.HasPrefix(key, "https://")
	addr := key[strings.Index(key, "://")+3:]
	dialer := &net.Dialer{Timeout: cc.Connect, KeepAlive: 30 * time.Second}
	return &fasthttp.HostClient{
		Addr:  addr,
		IsTLS: isTLS,
		Dial: func(addr string) (net.Conn, error) {
			dial := func(addr string) (net.Conn, error) { return dialer.Dial("tcp", addr) }
			if cc.Dialer != nil {
				dial = cc.Dialer.Dial
			}
			c, err := dial(addr)
			if err != nil {
				return nil, err
			}
			ic := &IdleConn{Conn: c, ReadIdle: cc.ReadIdle, WriteIdle: cc.ReadIdle}
			// A TLS connection's records (session tickets) may be pending while it
			// is sound: only plain connections are checked before reuse.
			if !isTLS && pooled {
				ic.peek = newPeeker(c)
			}
			return ic, nil
		},
		MaxConns: 1 << 20, // admission is the worker pool's job, not the client's
		// Each request then starts by setting the write deadline, which is where
		// IdleConn checks a pooled connection before using it.
		WriteTimeout:        cc.ReadIdle,
		MaxIdleConnDuration: cc.Idle,
		// The proxy decides retries itself, on another backend (DESIGN section 3).
		MaxIdemponentCallAttempts: 1,
		StreamResponseBody:        true,
		// The path passes through as the client wrote it.
		DisablePathNormalizing:   true,
		NoDefaultUserAgentHeader: true,
		ReadBufferSize:           16 << 10,
	}
}

// IdleConn is a net.Conn whose reads and writes each fail after about ReadIdle /
// WriteIdle without progress: a timeout between two successive operations, not for
// the whole transfer (nginx's proxy_read_timeout), so a long stream lives as long as
// it moves. A zero idle leaves that direction's deadline alone.
//
// To spare the runtime a timer update per operation, a deadline is moved only once a
// quarter of it has passed: the real limit lies between 3/4 and all of the idle time.
// Reads and writes may run on two goroutines; each direction on one at a time.
type IdleConn struct {
	net.Conn
	ReadIdle, WriteIdle time.Duration
	readAt, writeAt     time.Time // the deadlines set last
	// peek, when set, makes each request after the first check, before it writes
	// anything, that the pooled connection is still sound (see ErrStaleConn).
	peek *peeker
	used bool // a response was read from it: it has been in the pool
}

// ErrStaleConn is the error of a request not sent because the pooled connection it
// was to use had been closed by the backend while idle, or held bytes the backend
// sent unasked. Nothing was written: the request may go again on another connection.
var ErrStaleConn = errors.New("pooled backend connection closed or sent unexpected bytes while idle")

// Read reads with a fresh ReadIdle deadline.
func (c *IdleConn) Read(p []byte) (int, error) {
	c.used = true
	if c.ReadIdle > 0 {
		if err := Refresh(&c.readAt, c.ReadIdle, c.Conn.SetReadDeadline); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// Write writes with a fresh WriteIdle deadline.
func (c *IdleConn) Write(p []byte) (int, error) {
	if c.WriteIdle > 0 {
		if err := Refresh(&c.writeAt, c.WriteIdle, c.Conn.SetWriteDeadline); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

// SetWriteDeadline is where a request starts: the client sets the deadline of its
// write before it writes, or reads, any of the request (the backend client's
// WriteTimeout makes it do so for every request). On a connection that checks
// reuse and was used before, it first makes sure that the connection is sound;
// if not, it closes it and fails with ErrStaleConn, and the request has lost
// nothing, not even a byte of its body. The deadline itself moves as in Write.
func (c *IdleConn) SetWriteDeadline(t time.Time) error {
	if c.used && c.peek != nil && !c.peek.soundIdle() {
		_ = c.Conn.Close()
		return ErrStaleConn
	}
	if c.WriteIdle > 0 {
		return Refresh(&c.writeAt, c.WriteIdle, c.Conn.SetWriteDeadline)
	}
	c.writeAt = t
	return c.Conn.SetWriteDeadline(t)
}

// Refresh moves the deadline *at to now+idle through set, unless less than a quarter
// of idle has passed since it was last set.
func Refresh(at *time.Time, idle time.Duration, set func(time.Time) error) error {
	now := time.Now()
	if at.Sub(now) > idle-idle/4 {
		return nil
	}
	*at = now.Add(idle)
	return set(*at)
}
