//go:build netbsd || openbsd

package evloop

import "golang.org/x/sys/unix"

// waker interrupts kevent by writing to a pipe whose read end it watches; these systems
// have no EVFILT_USER.
type waker struct {
	r, w  int
	drain [64]byte
}

// wakeByte is what wake writes; goroutines waking at once may share it.
var wakeByte = [1]byte{1}

func (w *waker) open(kq int) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return syscallError("pipe2", err)
	}
	var k [1]unix.Kevent_t
	unix.SetKevent(&k[0], p[0], unix.EVFILT_READ, unix.EV_ADD)
	if _, err := unix.Kevent(kq, k[:], nil, nil); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return syscallError("kevent", err)
	}
	w.r, w.w = p[0], p[1]
	return nil
}

func (w *waker) close() {
	unix.Close(w.r)
	unix.Close(w.w)
}

func (w *waker) isWake(e *unix.Kevent_t) bool {
	return int(e.Filter) == unix.EVFILT_READ && int(e.Ident) == w.r
}

// wake may be called from any goroutine.
func (w *waker) wake() {
	unix.Write(w.w, wakeByte[:])
}

func (w *waker) drainWake() {
	for {
		if n, err := unix.Read(w.r, w.drain[:]); n <= 0 || err != nil {
			return
		}
	}
}
