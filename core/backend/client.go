package backend

import (
	"net"
	"time"
)

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
}

// Read reads with a fresh ReadIdle deadline.
func (c *IdleConn) Read(p []byte) (int, error) {
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
