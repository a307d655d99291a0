//go:build linux || freebsd

package evloop

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// socket makes a non-blocking, close-on-exec TCP socket for ip's family.
func socket(ip netip.Addr) (int, error) {
	return unix.Socket(family(ip), unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}

// accept takes a connection from lfd as a non-blocking, close-on-exec socket.
func accept(lfd int) (int, unix.Sockaddr, error) {
	return unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
}
