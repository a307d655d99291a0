//go:build linux

package evloop

import (
	"encoding/binary"
	"math"
	"time"

	"golang.org/x/sys/unix"
)

// poller waits for readiness with epoll, edge-triggered, and is woken through an
// eventfd.
type poller struct {
	epfd   int
	wakefd int               // eventfd; registered with data -1
	events []unix.EpollEvent // filled by wait, read by event
	full   bool              // the last wait filled events: grow it
	ctl    unix.EpollEvent   // argument of epoll_ctl
	drain  [8]byte           // eventfd counter read by drainWake
}

// wakeValue is what wake adds to the eventfd counter: 1, in host byte order.
var wakeValue = func() (b [8]byte) {
	binary.NativeEndian.PutUint64(b[:], 1)
	return b
}()

const (
	initialEvents = 128
	maxEvents     = 4096
)

func (p *poller) open() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return syscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return syscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return syscallError("epoll_ctl", err)
	}
	*p = poller{epfd: epfd, wakefd: wakefd, events: make([]unix.EpollEvent, initialEvents)}
	return nil
}

func (p *poller) close() error {
	unix.Close(p.wakefd)
	return unix.Close(p.epfd)
}

// epollEvents translates interest into epoll's flags.
func epollEvents(interest Events) uint32 {
	e := uint32(unix.EPOLLET)
	if interest&Readable != 0 {
		e |= unix.EPOLLIN | unix.EPOLLRDHUP
	}
	if interest&Writable != 0 {
		e |= unix.EPOLLOUT
	}
	return e
}

func (p *poller) control(op, fd int, interest Events) error {
	p.ctl = unix.EpollEvent{Events: epollEvents(interest), Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, op, fd, &p.ctl); err != nil {
		return syscallError("epoll_ctl", err)
	}
	return nil
}

func (p *poller) add(fd int, interest Events) error {
	return p.control(unix.EPOLL_CTL_ADD, fd, interest)
}

// modify replaces the interest; epoll re-arms the fd and reports readiness already
// present.
func (p *poller) modify(fd int, _, interest Events) error {
	return p.control(unix.EPOLL_CTL_MOD, fd, interest)
}

func (p *poller) remove(fd int, _ Events) error {
	return p.control(unix.EPOLL_CTL_DEL, fd, 0)
}

// wait blocks until events arrive or timeout passes (forever if negative), and
// returns how many events event can read.
func (p *poller) wait(timeout time.Duration) (int, error) {
	if p.full && len(p.events) < maxEvents {
		p.events = make([]unix.EpollEvent, 2*len(p.events))
	}
	msec := -1
	if timeout >= 0 {
		// Rounded up: waking before a timer is due would only poll again.
		msec = int(min((timeout+time.Millisecond-1)/time.Millisecond, math.MaxInt32))
	}
	n, err := unix.EpollWait(p.epfd, p.events, msec)
	if err != nil {
		if err == unix.EINTR {
			return 0, nil
		}
		return 0, syscallError("epoll_wait", err)
	}
	p.full = n == len(p.events)
	return n, nil
}

// event returns the fd and events of the i-th event of the last wait; fd is negative
// for the wake-up.
func (p *poller) event(i int) (fd int, ev Events) {
	e := &p.events[i]
	if e.Fd < 0 {
		return -1, 0
	}
	if e.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		ev |= Readable
	}
	if e.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		ev |= Writable
	}
	if e.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		ev |= Hangup
	}
	return int(e.Fd), ev
}

// wake makes a wait in progress, or the next one, return. It may be called from any
// goroutine.
func (p *poller) wake() {
	unix.Write(p.wakefd, wakeValue[:])
}

// drainWake resets the eventfd after a wake-up.
func (p *poller) drainWake() {
	unix.Read(p.wakefd, p.drain[:])
}
