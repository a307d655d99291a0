//go:build unix && !solaris

package lb

import (
	"context"
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// handOver: listen can bind a replacement front on the port the running one holds.
const handOver = true

// listen opens a TCP listener with SO_REUSEPORT, so that a replacement can bind the
// same port before the old listener closes. exclusive first checks, with a plain bind,
// that no other process holds the port (SO_REUSEPORT alone would share it silently).
//
// Linux spreads new connections over every listener on the port; macOS and the BSDs
// give them all to one of the listeners. Either way the hand-over works: until the old
// front stops accepting, either listener's connections are served, and after that the
// replacement takes them all.
func listen(addr string, exclusive bool) (net.Listener, error) {
	if exclusive {
		var err error
		if addr, err = claim(addr); err != nil {
			return nil, err
		}
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		})
		return errors.Join(err, serr)
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}
