//go:build darwin || freebsd

package evloop

import "golang.org/x/sys/unix"

// waker interrupts kevent with a user event (EVFILT_USER), which needs no fd and no
// read to reset it (EV_CLEAR).
type waker struct {
	kq int
}

// wakeIdent names the user event; idents of EVFILT_USER are apart from fds.
const wakeIdent = 0

// wakeTrigger is the change that fires the user event. The kernel only reads it, so
// goroutines waking at once may share it.
var wakeTrigger = func() (k [1]unix.Kevent_t) {
	unix.SetKevent(&k[0], wakeIdent, unix.EVFILT_USER, 0)
	k[0].Fflags = unix.NOTE_TRIGGER
	return k
}()

func (w *waker) open(kq int) error {
	var k [1]unix.Kevent_t
	unix.SetKevent(&k[0], wakeIdent, unix.EVFILT_USER, unix.EV_ADD|unix.EV_CLEAR)
	if _, err := unix.Kevent(kq, k[:], nil, nil); err != nil {
		return syscallError("kevent", err)
	}
	w.kq = kq
	return nil
}

func (w *waker) close() {}

func (w *waker) isWake(e *unix.Kevent_t) bool {
	return int(e.Filter) == unix.EVFILT_USER
}

// wake may be called from any goroutine.
func (w *waker) wake() {
	unix.Kevent(w.kq, wakeTrigger[:], nil, nil)
}

func (w *waker) drainWake() {}
