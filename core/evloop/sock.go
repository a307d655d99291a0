//go:build linux || darwin || freebsd || netbsd || openbsd

package evloop

import (
	"fmt"
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// listenBacklog is the accept queue asked for; the kernel caps it at its own limit
// (somaxconn). Older Linux kernels keep it in 16 bits.
const listenBacklog = 65535

// Listen opens a non-blocking TCP listener on addr ("host:port"; an empty host or ::
// listens on every address, IPv4 and IPv6) with SO_REUSEADDR, and with SO_REUSEPORT
// when reusePort is set, so that several processes can listen on the same port; Linux
// then spreads new connections over them. It returns the listener's fd, with
// close-on-exec set, and the address it is bound to, whose port is the chosen one
// when addr asked for port 0.
func Listen(addr string, reusePort bool) (fd int, bound *net.TCPAddr, err error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return -1, nil, fmt.Errorf("evloop: listen %s: %w", addr, err)
	}
	fd, err = listen(ta, reusePort)
	if err != nil {
		return -1, nil, fmt.Errorf("evloop: listen %s: %w", addr, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return -1, nil, fmt.Errorf("evloop: listen %s: %w", addr, syscallError("getsockname", err))
	}
	ap := addrPort(sa)
	return fd, &net.TCPAddr{IP: ap.Addr().AsSlice(), Port: int(ap.Port()), Zone: ta.Zone}, nil
}

// listen makes, binds and starts the listening socket for ta.
func listen(ta *net.TCPAddr, reusePort bool) (int, error) {
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	dual := !ip.IsValid() || ip == netip.IPv6Unspecified()
	if !ip.IsValid() {
		ip = netip.IPv6Unspecified()
	}
	ip = ip.WithZone(ta.Zone)
	fd, err := socket(ip)
	if err == unix.EAFNOSUPPORT && dual { // no IPv6 here
		ip = netip.IPv4Unspecified()
		fd, err = socket(ip)
	}
	if err != nil {
		return -1, syscallError("socket", err)
	}
	opts := []struct {
		level, name, value int
		on                 bool
	}{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, true},
		{unix.SOL_SOCKET, unix.SO_REUSEPORT, 1, reusePort},
		{unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(!dual), ip.Is6()},
	}
	for _, o := range opts {
		if !o.on {
			continue
		}
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			unix.Close(fd)
			return -1, syscallError("setsockopt", err)
		}
	}
	sa, err := sockaddr(netip.AddrPortFrom(ip, uint16(ta.Port)))
	if err == nil {
		err = syscallError("bind", unix.Bind(fd, sa))
	}
	if err == nil {
		err = syscallError("listen", unix.Listen(fd, listenBacklog))
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// Accept takes one pending connection from the listener lfd and returns its fd,
// non-blocking, close-on-exec and with TCP_NODELAY, and the peer's address (an IPv4
// peer of a dual-stack listener as IPv4). When no connection is pending it returns
// unix.EAGAIN as is, so that err == unix.EAGAIN holds; other errors name the call.
// Connections the peer aborted while queued are skipped.
func Accept(lfd int) (fd int, remote netip.AddrPort, err error) {
	for {
		fd, sa, err := accept(lfd)
		switch err {
		case nil:
			setNoDelay(fd)
			return fd, addrPort(sa), nil
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return -1, netip.AddrPort{}, err
		default:
			return -1, netip.AddrPort{}, syscallError("accept", err)
		}
	}
}

// Dial starts a non-blocking TCP connection to addr and returns its fd, close-on-exec
// and with TCP_NODELAY. The connection is usually still in progress: add the fd with
// Writable in the interest and, when told so, call ConnectError. An error that the
// system reports at once (for example ECONNREFUSED on some systems) is returned
// instead, and no fd is left open.
func Dial(addr netip.AddrPort) (fd int, err error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	sa, err := sockaddr(addr)
	if err != nil {
		return -1, err
	}
	fd, err = socket(addr.Addr())
	if err != nil {
		return -1, syscallError("socket", err)
	}
	setNoDelay(fd)
	switch err := unix.Connect(fd, sa); err {
	case nil, unix.EINPROGRESS, unix.EINTR: // EINTR: the connect goes on as with EINPROGRESS
		return fd, nil
	default:
		unix.Close(fd)
		return -1, syscallError("connect", err)
	}
}

// ConnectError reports how the connect started by Dial on fd ended, once fd was
// reported Writable: nil if it is connected, else why not (errors.Is(err,
// unix.ECONNREFUSED) for a refused one), or EINPROGRESS when the connect has not
// ended yet (a Writable report about something else). The error is the kernel's
// pending socket error, which it hands out once: ask once per connect.
func ConnectError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return syscallError("getsockopt", err)
	}
	if v != 0 {
		return syscallError("connect", unix.Errno(v))
	}
	// No error yet is not proof of a connection: make sure there is a peer. None
	// and no error means the connect is still under way (a Writable report that
	// was not about this connect): the caller waits for the next one.
	if _, err := unix.Getpeername(fd); err != nil {
		if err == unix.ENOTCONN {
			return syscallError("connect", unix.EINPROGRESS)
		}
		return syscallError("getpeername", err)
	}
	return nil
}

// setNoDelay turns off Nagle's algorithm. Its error is ignored, as the net package
// does: a connection that is already reset fails here on some systems, and its next
// read says so.
func setNoDelay(fd int) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
}

// sockaddr converts an address to its socket form.
func sockaddr(ap netip.AddrPort) (unix.Sockaddr, error) {
	ip := ap.Addr()
	switch {
	case ip.Is4():
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}, nil
	case ip.Is6():
		sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
		if z := ip.Zone(); z != "" {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return nil, fmt.Errorf("evloop: zone of %s: %w", ap, err)
			}
			sa.ZoneId = uint32(ifi.Index)
		}
		return sa, nil
	}
	return nil, fmt.Errorf("evloop: address %s: %w", ap, unix.EAFNOSUPPORT)
}

// addrPort converts a socket address to its netip form, IPv4-mapped IPv6 addresses to
// IPv4.
func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

// family returns the address family of ip's sockets.
func family(ip netip.Addr) int {
	if ip.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
