//go:build unix

package backend

import (
	"errors"
	"net"
	"syscall"
)

// soundIdle reports whether an idle pooled connection may carry the next request:
// nothing is waiting to be read on it (no bytes the backend sent unasked, no end of
// stream from a backend that closed it while idle). It peeks without blocking, as
// HAProxy's event loop would have noticed; a connection it cannot inspect is sound.
func soundIdle(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	sound := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing pending, the normal case. n > 0: stray bytes. n == 0: the
		// backend closed. Any other error (a reset) makes it unusable too.
		sound = n < 0 && errors.Is(err, syscall.EAGAIN)
		return true // never wait for readiness
	})
	return sound && err == nil
}
