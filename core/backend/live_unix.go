//go:build unix

package backend

import (
	"errors"
	"net"
	"syscall"
)

// peeker looks, without blocking, for what waits to be read on a connection. It is
// built once per connection, so that a check allocates nothing.
type peeker struct {
	rc    syscall.RawConn
	fn    func(fd uintptr) bool // p.peek, bound once
	sound bool
	buf   [1]byte
}

// newPeeker returns a peeker for c, or nil when c is not a socket it can inspect.
func newPeeker(c net.Conn) *peeker {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &peeker{rc: rc}
	p.fn = p.peek
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	_, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	// EAGAIN: nothing pending, the normal case. No error: stray bytes, or the end of
	// the stream (0 bytes) from a backend that closed. Any other error (a reset)
	// makes it unusable too.
	p.sound = errors.Is(err, syscall.EAGAIN)
	return true // never wait for readiness
}

// soundIdle reports whether an idle pooled connection may carry the next request:
// nothing is waiting to be read on it (no bytes the backend sent unasked, no end of
// stream from a backend that closed it while idle). A connection it cannot inspect
// (p is nil) counts as sound.
func (p *peeker) soundIdle() bool {
	if p == nil {
		return true
	}
	err := p.rc.Read(p.fn)
	return err == nil && p.sound
}
