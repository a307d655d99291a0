package proxy

import (
	"net"
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
}

// streamBody switches reads to per-read idle deadlines for the current request body.
func (c *clientConn) streamBody() { c.streaming.Store(true) }

// SetReadDeadline is the server taking back control of read deadlines.
func (c *clientConn) SetReadDeadline(t time.Time) error {
	c.streaming.Store(false)
	c.readAt = t
	return c.Conn.SetReadDeadline(t)
}

// SetDeadline is the server taking back control of deadlines.
func (c *clientConn) SetDeadline(t time.Time) error {
	c.streaming.Store(false)
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
	}
	return c.Conn.Read(p)
}

// Write writes with a fresh idle deadline.
func (c *clientConn) Write(p []byte) (int, error) {
	if err := backend.Refresh(&c.writeAt, c.idle, c.Conn.SetWriteDeadline); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
