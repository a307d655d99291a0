//go:build linux || darwin || freebsd || netbsd || openbsd

package evloop

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dialOnLoop dials addr, waits on l for the connect to end and returns ConnectError's
// answer, or Dial's when it failed at once.
func dialOnLoop(t *testing.T, l *Loop, addr netip.AddrPort) (fd int, err error) {
	t.Helper()
	fd, err = Dial(addr)
	if err != nil {
		return -1, err
	}
	t.Cleanup(func() { unix.Close(fd) })
	result := make(chan error, 1)
	onLoop(t, l, func() {
		err := l.Add(fd, Writable, handlerFunc(func(ev Events) {
			if ev&Writable == 0 {
				return
			}
			l.Remove(fd)
			result <- ConnectError(fd)
		}))
		if err != nil {
			t.Fatal(err)
		}
	})
	select {
	case err := <-result:
		return fd, err
	case <-time.After(hang):
		t.Fatal("the connect never ended")
	}
	return -1, nil
}

func TestDialListening(t *testing.T) {
	l := startLoop(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	fd, err := dialOnLoop(t, l, addr)
	if err != nil {
		t.Fatalf("connecting to a listening port: %v", err)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := unix.Write(fd, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	c.SetReadDeadline(time.Now().Add(hang))
	if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
		t.Fatalf("peer read %q, %v; want \"hi\"", buf, err)
	}
	if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
		t.Errorf("TCP_NODELAY on a dialled socket = %d, %v; want on", v, err)
	}
}

func TestDialClosedPort(t *testing.T) {
	l := startLoop(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr).AddrPort()
	ln.Close()
	fd, err := dialOnLoop(t, l, addr)
	if !errors.Is(err, unix.ECONNREFUSED) {
		t.Fatalf("connecting to a closed port: err = %v, want ECONNREFUSED", err)
	}
	if fd < 0 {
		t.Logf("Dial reported the refusal at once")
	}
}

func TestListenAccept(t *testing.T) {
	lfd, addr := listenLoopback(t)
	if _, _, err := Accept(lfd); err != unix.EAGAIN {
		t.Fatalf("Accept with nothing pending: err = %v, want EAGAIN as is", err)
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var fd int
	var remote netip.AddrPort
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		fd, remote, err = Accept(lfd)
		if err != unix.EAGAIN || time.Since(start) > hang {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if want := c.LocalAddr().(*net.TCPAddr).AddrPort(); remote != want {
		t.Errorf("Accept remote = %v, want %v", remote, want)
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || flags&unix.O_NONBLOCK == 0 {
		t.Errorf("accepted fd flags = %#x, %v; want O_NONBLOCK", flags, err)
	}
	if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v == 0 {
		t.Errorf("TCP_NODELAY on an accepted socket = %d, %v; want on", v, err)
	}
}

func TestListenReusePort(t *testing.T) {
	fd1, addr, err := Listen("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd1)
	if addr.Port == 0 || !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("Listen bound to %v, want 127.0.0.1 and a chosen port", addr)
	}
	fd2, addr2, err := Listen(addr.String(), true)
	if err != nil {
		t.Fatalf("second listener with SO_REUSEPORT on %v: %v", addr, err)
	}
	defer unix.Close(fd2)
	if addr2.Port != addr.Port {
		t.Errorf("second listener bound to %v, want port %d", addr2, addr.Port)
	}
	fd3, _, err := Listen(addr.String(), false)
	if err == nil {
		unix.Close(fd3)
	}
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("listener without SO_REUSEPORT on a taken port: err = %v, want EADDRINUSE", err)
	}
}

// TestListenDualStack listens on every address and connects over IPv4: the remote
// address is plain IPv4.
func TestListenDualStack(t *testing.T) {
	fd, addr, err := Listen(":0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	c, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var remote netip.AddrPort
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		var nfd int
		nfd, remote, err = Accept(fd)
		if err == nil {
			unix.Close(nfd)
		}
		if err != unix.EAGAIN || time.Since(start) > hang {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !remote.Addr().Is4() {
		t.Errorf("remote of an IPv4 client = %v, want an IPv4 address", remote)
	}
}
