//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/switchyard-lb/switchyard/core/evloop"
)

// sock is one non-blocking socket on a loop: a read buffer held only while it has
// bytes, and the bytes a write could not send yet.
type sock struct {
	l      *loop
	fd     int
	buf    []byte // nil when empty; buf[r:w] is unread
	r, w   int
	pin    int    // buf[:pin] is kept in place (a request head in use)
	out    []byte // unsent, in order
	paused bool   // reading stopped (backpressure, or the buffer is full)
	eof    bool   // the peer closed its side, or the read failed
	rerr   error  // the read error, nil at a clean end of stream
	werr   error  // the first write error
	wrote  bool   // a write has taken bytes since the last expectHead
	shut   bool   // writing was shut down: the peer read the end of the stream
}

// unread is what was read and not consumed.
func (s *sock) unread() []byte { return s.buf[s.r:s.w] }

// consume marks n unread bytes consumed.
func (s *sock) consume(n int) {
	s.r += n
	if s.r == s.w {
		s.r, s.w = s.pin, s.pin
	}
}

// fill reads until the socket has nothing more, the buffer is full, or the stream
// ended. A read that returns less than it asked for emptied the socket, so reading
// stops there (the loop reports data that comes later anew) unless hangup says the
// stream's end is waiting to be read. It returns whether anything was read.
func (s *sock) fill(hangup bool) bool {
	if s.eof || s.paused {
		return false
	}
	got := false
	for {
		if s.buf == nil {
			s.buf = s.l.getBuf()
		}
		if s.w == len(s.buf) {
			if s.r == s.pin {
				s.pause() // full: the owner consumes, then resumes
				return got
			}
			s.w = s.pin + copy(s.buf[s.pin:], s.buf[s.r:s.w])
			s.r = s.pin
		}
		n, err := evloop.Read(s.fd, s.buf[s.w:])
		switch {
		case n > 0:
			short := s.w+n < len(s.buf)
			s.w += n
			got = true
			if short && !hangup {
				return true
			}
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			s.releaseBuf()
			return got
		default: // n == 0: end of stream, or an error
			s.eof, s.rerr = true, err
			s.releaseBuf()
			return true
		}
	}
}

// releaseBuf gives the read buffer back when it holds nothing.
func (s *sock) releaseBuf() {
	if s.buf != nil && s.r == s.w && s.pin == 0 {
		s.l.putBuf(s.buf)
		s.buf, s.r, s.w = nil, 0, 0
	}
}

// pause stops reading until resume.
func (s *sock) pause() {
	if !s.paused {
		s.paused = true
		_ = s.l.ev.Modify(s.fd, evloop.Writable)
	}
}

// resume reads again; data already waiting is reported as an event.
func (s *sock) resume() {
	if s.paused {
		s.paused = false
		_ = s.l.ev.Modify(s.fd, evloop.Readable|evloop.Writable)
	}
}

// send writes the pieces in order, keeping what the socket does not take now. It
// returns false once a write has failed.
func (s *sock) send(pieces ...[]byte) bool {
	if s.werr != nil {
		return false
	}
	if len(s.out) > 0 {
		for _, p := range pieces {
			s.out = append(s.out, p...)
		}
		return true
	}
	for {
		for len(pieces) > 0 && len(pieces[0]) == 0 {
			pieces = pieces[1:]
		}
		if len(pieces) == 0 {
			return true
		}
		var n int
		var err error
		if len(pieces) == 1 {
			n, err = evloop.Write(s.fd, pieces[0])
		} else {
			n, err = evloop.Writev(s.fd, pieces)
		}
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			n = 0
		} else if err != nil {
			s.werr = err
			return false
		}
		if n > 0 {
			s.wrote = true
		}
		for n > 0 && len(pieces) > 0 {
			k := min(n, len(pieces[0]))
			pieces[0] = pieces[0][k:]
			n -= k
			if len(pieces[0]) == 0 {
				pieces = pieces[1:]
			}
		}
		if err == unix.EAGAIN {
			for _, p := range pieces {
				s.out = append(s.out, p...)
			}
			return true
		}
	}
}

// flush writes what send kept. It returns true when nothing is left.
func (s *sock) flush() bool {
	for len(s.out) > 0 && s.werr == nil {
		n, err := evloop.Write(s.fd, s.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return false
		}
		if err != nil {
			s.werr = err
			return false
		}
		s.out = s.out[n:]
	}
	if len(s.out) == 0 && cap(s.out) > 0 {
		s.out = nil // the space goes back to the collector: idle connections keep none
	}
	return len(s.out) == 0
}

// backlog is how many unsent bytes make the sender's peer stop reading.
const backlog = 256 << 10

// congested reports whether enough is waiting to be sent that reading more for this
// socket should stop.
func (s *sock) congested() bool { return len(s.out) >= backlog }

// shutWrite ends the stream towards the peer (a FIN), keeping the other direction
// open.
func (s *sock) shutWrite() {
	if !s.shut && s.fd >= 0 {
		s.shut = true
		_ = unix.Shutdown(s.fd, unix.SHUT_WR)
	}
}

// closeFD removes the socket from the loop and closes it.
func (s *sock) closeFD() {
	if s.fd < 0 {
		return
	}
	s.l.ev.Forget(s.fd) // closing it takes it off the poller
	unix.Close(s.fd)
	s.fd = -1
	if s.buf != nil {
		s.l.putBuf(s.buf)
		s.buf, s.r, s.w, s.pin = nil, 0, 0, 0
	}
	s.out = nil
}

var errClosed = errors.New("connection closed")
