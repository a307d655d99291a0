//go:build darwin || freebsd || netbsd || openbsd

package evloop

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller waits for readiness with kqueue, edge-triggered (EV_CLEAR); waker is how other
// goroutines interrupt it, which depends on the system.
type poller struct {
	kq      int
	events  []unix.Kevent_t // filled by wait, read by event
	full    bool            // the last wait filled events: grow it
	changes [2]unix.Kevent_t
	ts      unix.Timespec
	waker
}

const (
	initialEvents = 128
	maxEvents     = 4096
)

func (p *poller) open() error {
	syscall.ForkLock.RLock()
	kq, err := unix.Kqueue()
	if err == nil {
		unix.CloseOnExec(kq)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return syscallError("kqueue", err)
	}
	*p = poller{kq: kq, events: make([]unix.Kevent_t, initialEvents)}
	if err := p.waker.open(kq); err != nil {
		unix.Close(kq)
		return err
	}
	return nil
}

func (p *poller) close() error {
	p.waker.close()
	return unix.Close(p.kq)
}

func (p *poller) add(fd int, interest Events) error {
	return p.modify(fd, 0, interest)
}

// modify adds the filters in interest, which re-arms them and reports readiness already
// present, and deletes those only in old.
func (p *poller) modify(fd int, old, interest Events) error {
	n := 0
	for _, f := range [...]struct {
		ev     Events
		filter int
	}{{Readable, unix.EVFILT_READ}, {Writable, unix.EVFILT_WRITE}} {
		switch {
		case interest&f.ev != 0:
			unix.SetKevent(&p.changes[n], fd, f.filter, unix.EV_ADD|unix.EV_CLEAR)
		case old&f.ev != 0:
			unix.SetKevent(&p.changes[n], fd, f.filter, unix.EV_DELETE)
		default:
			continue
		}
		n++
	}
	if n == 0 {
		return nil
	}
	if _, err := unix.Kevent(p.kq, p.changes[:n], nil, nil); err != nil {
		return syscallError("kevent", err)
	}
	return nil
}

func (p *poller) remove(fd int, old Events) error {
	return p.modify(fd, old, 0)
}

// wait blocks until events arrive or timeout passes (forever if negative), and
// returns how many events event can read.
func (p *poller) wait(timeout time.Duration) (int, error) {
	if p.full && len(p.events) < maxEvents {
		p.events = make([]unix.Kevent_t, 2*len(p.events))
	}
	var ts *unix.Timespec
	if timeout >= 0 {
		p.ts = unix.NsecToTimespec(int64(timeout))
		ts = &p.ts
	}
	n, err := unix.Kevent(p.kq, nil, p.events, ts)
	if err != nil {
		if err == unix.EINTR {
			return 0, nil
		}
		return 0, syscallError("kevent", err)
	}
	p.full = n == len(p.events)
	return n, nil
}

// event returns the fd and events of the i-th event of the last wait; fd is negative
// for the wake-up.
func (p *poller) event(i int) (fd int, ev Events) {
	e := &p.events[i]
	if p.isWake(e) {
		return -1, 0
	}
	ev = Readable
	if int(e.Filter) == unix.EVFILT_WRITE {
		ev = Writable
	}
	if e.Flags&unix.EV_EOF != 0 {
		ev |= Readable | Hangup // on the write filter: no longer writable, the read says why
	}
	return int(e.Ident), ev
}
