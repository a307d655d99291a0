//go:build darwin || netbsd || openbsd

package evloop

import (
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// socket makes a non-blocking, close-on-exec TCP socket for ip's family. These systems
// (or their x/sys bindings) have no flags for that in socket and accept, so the fd is
// set up afterwards, holding ForkLock so that no child inherits it meanwhile.
func socket(ip netip.Addr) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family(ip), unix.SOCK_STREAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := nonblock(fd); err != nil {
		return -1, err
	}
	return fd, nil
}

// accept takes a connection from lfd as a non-blocking, close-on-exec socket.
func accept(lfd int) (int, unix.Sockaddr, error) {
	syscall.ForkLock.RLock()
	fd, sa, err := unix.Accept(lfd)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, nil, err
	}
	if err := nonblock(fd); err != nil {
		return -1, nil, err
	}
	return fd, sa, nil
}

// nonblock makes fd non-blocking, closing it if that fails.
func nonblock(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return err
	}
	return nil
}
