//go:build linux || darwin || freebsd || netbsd || openbsd

package evloop

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoServer is an echo server on a Loop, written as a proxy's connection would be:
// reads until EAGAIN, keeps what the peer cannot take yet, and stops reading while
// too much is pending (backpressure). Everything runs on the loop's goroutine.
type echoServer struct {
	l      *Loop
	lfd    int
	buf    []byte        // read buffer shared by all connections
	limit  int           // most bytes pending per connection before it stops reading
	sndbuf int           // SO_SNDBUF of accepted connections, if not 0
	short  bool          // stop reading after a short read unless Hangup (see Handler)
	pauses int           // times a connection stopped reading
	paused chan struct{} // closed when a connection first stops reading
	open   int           // connections open
	errs   chan error
}

// startEcho serves echo on a loopback port and returns the server and its address.
func startEcho(t testing.TB, l *Loop, readSize, limit int) (*echoServer, *net.TCPAddr) {
	t.Helper()
	lfd, addr := listenLoopback(t)
	s := newEchoServer(l, lfd, readSize, limit)
	onLoop(t, l, func() {
		if err := l.Add(lfd, Readable, s); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() {
		select {
		case err := <-s.errs:
			t.Errorf("echo server: %v", err)
		default:
		}
	})
	return s, addr
}

// newEchoServer returns an echo server for the listener lfd, to be added to l.
func newEchoServer(l *Loop, lfd, readSize, limit int) *echoServer {
	return &echoServer{
		l: l, lfd: lfd, buf: make([]byte, readSize), limit: limit,
		paused: make(chan struct{}), errs: make(chan error, 1),
	}
}

func (s *echoServer) fail(err error) {
	select {
	case s.errs <- err:
	default:
	}
}

// OnEvents accepts every pending connection.
func (s *echoServer) OnEvents(Events) {
	for {
		fd, _, err := Accept(s.lfd)
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			s.fail(err)
			return
		}
		if s.sndbuf > 0 {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, s.sndbuf)
		}
		c := &echoConn{s: s, fd: fd, reading: true}
		if err := s.l.Add(fd, Readable|Writable, c); err != nil {
			s.fail(err)
			unix.Close(fd)
			return
		}
		s.open++
	}
}

type echoConn struct {
	s       *echoServer
	fd      int
	out     []byte // read but not yet written
	reading bool   // Readable is in the interest
	eof     bool   // the peer finished sending
	closed  bool
}

func (c *echoConn) OnEvents(ev Events) {
	if ev&Writable != 0 {
		c.flush()
	}
	if ev&Readable != 0 && c.reading && !c.closed {
		c.read(c.s.short && ev&Hangup == 0)
	}
}

// read reads until EAGAIN, echoing, or until too much is pending; if short is set,
// also until a read returns less than it asked for.
func (c *echoConn) read(short bool) {
	for len(c.out) < c.s.limit {
		n, err := unix.Read(c.fd, c.s.buf)
		switch {
		case err == unix.EAGAIN:
			return
		case err != nil:
			c.close()
			return
		case n == 0:
			c.eof = true
			if len(c.out) == 0 {
				c.close()
			}
			return
		}
		c.write(c.s.buf[:n])
		if c.closed || short && n < len(c.s.buf) {
			return
		}
	}
	c.reading = false
	if c.s.pauses++; c.s.pauses == 1 {
		close(c.s.paused)
	}
	if err := c.s.l.Modify(c.fd, Writable); err != nil {
		c.s.fail(err)
	}
}

// write sends p, or keeps what the socket cannot take.
func (c *echoConn) write(p []byte) {
	if len(c.out) == 0 {
		n, err := unix.Write(c.fd, p)
		if err != nil && err != unix.EAGAIN {
			c.close()
			return
		}
		p = p[max(n, 0):]
	}
	c.out = append(c.out, p...)
}

// flush writes what is pending and resumes reading once all of it is gone.
func (c *echoConn) flush() {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			c.close()
			return
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	switch {
	case c.closed:
	case c.eof:
		c.close()
	case !c.reading:
		c.reading = true
		if err := c.s.l.Modify(c.fd, Readable|Writable); err != nil {
			c.s.fail(err)
		}
	}
}

func (c *echoConn) close() {
	if c.closed {
		return
	}
	c.closed = true
	c.s.open--
	if err := c.s.l.Remove(c.fd); err != nil {
		c.s.fail(err)
	}
	unix.Close(c.fd)
}

// pattern returns n bytes that differ per connection and position.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestEcho runs many connections through the echo server at once, each sending its
// data in random pieces while a second goroutine reads the echo; some readers start
// late, so that the server's writes hit EAGAIN and it stops reading until they drain.
// Everything sent comes back, in order, and every connection ends cleanly. The server
// reads until EAGAIN, or stops at a short read as Handler allows.
func TestEcho(t *testing.T) {
	t.Run("until-eagain", func(t *testing.T) { testEcho(t, false) })
	t.Run("short-reads", func(t *testing.T) { testEcho(t, true) })
}

func testEcho(t *testing.T, short bool) {
	l := startLoop(t)
	s, addr := startEcho(t, l, 1500, 16<<10)
	onLoop(t, l, func() {
		s.sndbuf = 8 << 10 // small: many partial writes
		s.short = short
	})
	const conns = 40
	var wg sync.WaitGroup
	for i := range conns {
		size := 64 << 10
		slow := i%8 == 0
		if slow {
			size = 1 << 20 // more than the buffers of a reader that does not read
		}
		wg.Go(func() {
			var wait chan struct{}
			if slow {
				wait = s.paused
			}
			if err := echoClient(addr, pattern(uint64(i), size), uint64(i), wait); err != nil {
				t.Errorf("connection %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	for start := time.Now(); ; time.Sleep(time.Millisecond) {
		var open, pauses int
		onLoop(t, l, func() { open, pauses = s.open, s.pauses })
		if open == 0 {
			if pauses == 0 {
				t.Error("no connection ever stopped reading: backpressure was not exercised")
			}
			t.Logf("connections stopped reading %d times", pauses)
			return
		}
		if time.Since(start) > hang {
			t.Fatalf("%d connections still open on the server", open)
		}
	}
}

// echoClient sends data in random pieces, reads it back concurrently and then expects
// the server to close after the client's half-close. If wait is not nil, it starts
// reading only once wait is closed or everything is sent.
func echoClient(addr *net.TCPAddr, data []byte, seed uint64, wait chan struct{}) error {
	c, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(hang))
	werr := make(chan error, 1)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		r := rand.New(rand.NewPCG(seed, 1))
		p := data
		for len(p) > 0 {
			n := min(len(p), 1+r.IntN(8<<10))
			if _, err := c.Write(p[:n]); err != nil {
				werr <- err
				return
			}
			p = p[n:]
		}
		werr <- c.CloseWrite()
	}()
	if wait != nil {
		select {
		case <-wait:
		case <-sent:
		}
	}
	got, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if err := <-werr; err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return errors.New("echo differs from what was sent")
	}
	return nil
}
