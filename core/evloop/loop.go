//go:build linux || darwin || freebsd || netbsd || openbsd

// Package evloop provides a single-goroutine event loop (a reactor) over epoll on Linux
// and kqueue on the BSDs and macOS: it tells handlers when their non-blocking file
// descriptors become readable or writable, runs timers, and runs functions handed over
// by other goroutines.
//
// A Loop belongs to the goroutine that calls Run. The methods of Loop and Timer and
// every callback (Handler.OnEvents, timer, Execute and AfterPass functions) run on that
// goroutine only, and so need no lock; before Run starts, the goroutine setting the
// Loop up may call them. The exceptions are Execute, Wake and Close, which any
// goroutine may call at any time. Callbacks must not block: while one runs, nothing
// else on the loop does. The socket functions (Listen, Accept, Dial, ConnectError) are
// plain system calls that any goroutine may use.
//
// Readiness is edge-triggered. A handler is told once that its fd became readable or
// writable, and is not told again about that direction until a read or write of its own
// has returned EAGAIN or it calls Modify. A handler that stops reading before EAGAIN,
// say because the peer it forwards to is not keeping up, removes Readable from its
// interest and adds it back when it wants more: Modify reports data already waiting.
// Events are hints: a handler may be told of readiness that a read or write then finds
// gone (EAGAIN), and must treat that as normal.
package evloop

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Events is a set of readiness conditions of a file descriptor.
type Events uint8

const (
	// Readable means a read will not block: there is data, the end of the stream,
	// a pending connection on a listener, or an error.
	Readable Events = 1 << iota
	// Writable means a write will not block: there is room in the send buffer, a
	// non-blocking connect has completed (see ConnectError), or an error.
	Writable
	// Hangup comes with Readable when the peer has closed its side of the connection
	// or the connection failed: reading on will reach the end of the stream or the
	// error. It is only reported, never part of an interest.
	Hangup
)

// Handler is told of readiness on the fd it was added with. It does its own reads and
// writes (unix.Read, unix.Write) until they return EAGAIN. A hang-up or an error is
// reported as Readable|Hangup, so that a read sees the end of the stream or the error,
// and also as Writable when the fd can no longer be written to.
//
// On a stream socket, a read that returns less than it asked for has emptied the
// receive buffer, and data arriving later is reported anew; so unless Hangup was
// reported, a handler may stop reading there, saving the read that would return
// EAGAIN.
//
// OnEvents runs on the loop's goroutine and must not block.
type Handler interface {
	OnEvents(ev Events)
}

// ErrClosed is returned by Run and by the methods of a Loop that has been closed.
var ErrClosed = errors.New("evloop: loop closed")

// Loop states, in the order a Loop goes through them.
const (
	stateIdle    int32 = iota // made by New, Run not yet called
	stateRunning              // Run serving
	stateClosing              // Close called while running; Run returns after this pass
	stateClosed               // poller released
)

// Default timing wheel: 10 ms per slot, 512 slots, so one revolution is 5.12 s. Timers
// further out wait for their round; typical proxy timeouts (connect, idle, read header)
// cost one visit per revolution.
const (
	defaultTick  = 10 * time.Millisecond
	defaultSlots = 512
)

// slot is what the loop knows of one registered fd.
type slot struct {
	h        Handler
	interest Events
	pass     uint64 // the pass during which the fd was added
}

// Loop is an event loop. A Loop must be made by New; see the package documentation for
// which goroutine may call what.
type Loop struct {
	p     poller
	state atomic.Int32
	fds   []slot // indexed by fd; h is nil where no handler is registered
	pass  uint64 // counts passes; the current one while a pass runs
	now   time.Time
	wheel wheel
	after []func() // AfterPass functions of the current pass

	// mu guards the fields below, and the wake-up signal against the poller being
	// released: a signal after that could reach an unrelated file reusing its fd.
	mu       sync.Mutex
	woken    bool     // a wake-up is signalled and not yet served
	released bool     // the poller is closed
	queue    []func() // Execute functions waiting for the loop
	spare    []func() // the previous queue, kept for its capacity (loop goroutine only)
}

// New returns a Loop ready to have fds added and to Run.
func New() (*Loop, error) {
	return newLoop(defaultTick, defaultSlots)
}

func newLoop(tick time.Duration, slots int) (*Loop, error) {
	l := &Loop{now: time.Now()}
	if err := l.p.open(); err != nil {
		return nil, err
	}
	l.wheel.init(&l.now, tick, slots)
	return l, nil
}

// Run serves events, timers and queued functions until Close is called, then returns
// nil. It returns ErrClosed if the Loop was closed before, and an error if polling
// fails. Run must be called once; its goroutine owns the Loop from then on. A panic in
// a callback leaves Run, and the Loop is closed.
//
// Run does not lock its goroutine to an OS thread. A caller may do so with
// runtime.LockOSThread, at the cost of a thread hand-off whenever the runtime moves
// the processor away during a system call.
func (l *Loop) Run() error {
	if !l.state.CompareAndSwap(stateIdle, stateRunning) {
		if l.state.Load() == stateRunning {
			return errors.New("evloop: Run called twice")
		}
		return ErrClosed
	}
	defer l.release()
	for l.state.Load() == stateRunning {
		if err := l.runPass(); err != nil {
			return err
		}
		// The sockets' calls do not pass through the scheduler (see Read), so under
		// load this goroutine would keep its processor until preempted, 10 ms on:
		// give the others their turn once a pass. With nothing else runnable this
		// costs a few hundred nanoseconds.
		runtime.Gosched()
	}
	return nil
}

// Close stops the Loop: a running Run returns after its current pass, and a Loop not
// yet run releases its poller at once. Registered fds are left open; they belong to
// the caller. Functions still queued by Execute are not run. Close may be called from
// any goroutine, including the loop's own; it returns ErrClosed if the Loop was
// already closed.
func (l *Loop) Close() error {
	for {
		switch s := l.state.Load(); s {
		case stateIdle:
			if l.state.CompareAndSwap(s, stateClosed) {
				return l.releasePoller()
			}
		case stateRunning:
			if l.state.CompareAndSwap(s, stateClosing) {
				l.Wake()
				return nil
			}
		default:
			return ErrClosed
		}
	}
}

// release frees the poller once Run has stopped.
func (l *Loop) release() {
	l.state.Store(stateClosed)
	l.releasePoller()
}

func (l *Loop) releasePoller() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = true
	l.queue = nil
	return l.p.close()
}

// Add registers fd, which must be non-blocking, with the events of interest; h is
// then told of them. An fd may be added once; Remove it before adding it again.
func (l *Loop) Add(fd int, interest Events, h Handler) error {
	if h == nil || fd < 0 {
		return fmt.Errorf("evloop: Add(%d): %w", fd, unix.EINVAL)
	}
	if l.state.Load() == stateClosed {
		return ErrClosed
	}
	if fd >= len(l.fds) {
		l.grow(fd)
	}
	s := &l.fds[fd]
	if s.h != nil {
		return fmt.Errorf("evloop: Add(%d): %w", fd, unix.EEXIST)
	}
	if err := l.p.add(fd, interest); err != nil {
		return err
	}
	*s = slot{h: h, interest: interest, pass: l.pass}
	return nil
}

// grow makes l.fds long enough to hold fd.
func (l *Loop) grow(fd int) {
	n := max(2*len(l.fds), fd+1, 64)
	fds := make([]slot, n)
	copy(fds, l.fds)
	l.fds = fds
}

// Modify replaces the interest of a registered fd. Leaving Readable out stops the
// handler being told of incoming data, which leaves it in the kernel's buffers and so,
// once they fill, makes the peer's writes block: backpressure. Modify also reports
// readiness that is already present, so adding Readable back resumes a paused reader.
// With an empty interest the fd stays registered; whether a hang-up is reported then
// depends on the system (Linux does, kqueue does not).
func (l *Loop) Modify(fd int, interest Events) error {
	s, err := l.registered(fd)
	if err != nil {
		return err
	}
	if err := l.p.modify(fd, s.interest, interest); err != nil {
		return err
	}
	s.interest = interest
	return nil
}

// Remove unregisters fd; its handler is not told of it again, even of events already
// collected in the current pass. Remove an fd before closing it.
func (l *Loop) Remove(fd int) error {
	s, err := l.registered(fd)
	if err != nil {
		return err
	}
	err = l.p.remove(fd, s.interest)
	*s = slot{}
	return err
}

// Forget unregisters fd without a system call, for a caller that closes fd at once:
// the kernel takes a closed descriptor off the poller itself (epoll and kqueue both do,
// once no other descriptor refers to the socket, and every socket made here is
// close-on-exec, so no child holds one). Like Remove, it keeps fd's handler from
// hearing of events already collected in the current pass. On a connection closed
// per request this saves a system call per close.
func (l *Loop) Forget(fd int) {
	if s, err := l.registered(fd); err == nil {
		*s = slot{}
	}
}

// registered returns the slot of a registered fd.
func (l *Loop) registered(fd int) (*slot, error) {
	if fd < 0 || fd >= len(l.fds) || l.fds[fd].h == nil {
		return nil, fmt.Errorf("evloop: fd %d not added: %w", fd, unix.ENOENT)
	}
	if l.state.Load() == stateClosed {
		return nil, ErrClosed
	}
	return &l.fds[fd], nil
}

// Execute queues f to run on the loop's goroutine soon, after the events of the pass in
// which the loop finds it. Functions run in the order they were queued. Execute may be
// called from any goroutine; functions queued after Close may never run.
func (l *Loop) Execute(f func()) {
	l.mu.Lock()
	if !l.released {
		l.queue = append(l.queue, f)
		l.wake()
	}
	l.mu.Unlock()
}

// Wake makes the loop run a pass soon even if nothing is ready: a poll waiting for
// events returns. It may be called from any goroutine; wake-ups not yet served are
// merged into one.
func (l *Loop) Wake() {
	l.mu.Lock()
	l.wake()
	l.mu.Unlock()
}

// wake signals the poller unless a signal is already pending. It requires that l.mu
// is held.
func (l *Loop) wake() {
	if !l.woken && !l.released {
		l.woken = true
		l.p.wake()
	}
}

// Now returns the time read once at the start of the current pass, after the poll
// returned. It costs nothing, and timers measure their delays from it.
func (l *Loop) Now() time.Time {
	return l.now
}

// AfterPass queues f to run once at the end of the current pass, after its events,
// Execute functions and timers, so that work arising from several events can be done
// once (for example, one message carrying all the picks of a pass). Functions run in
// the order they were queued; one queued by an AfterPass function runs in the same
// pass. Queued outside a pass, f runs at the end of the next one, which then starts at
// once.
func (l *Loop) AfterPass(f func()) {
	l.after = append(l.after, f)
}

// runPass waits for events or the next timer, then serves one pass: ready fds,
// queued functions, due timers, AfterPass functions.
func (l *Loop) runPass() error {
	timeout := time.Duration(-1) // no timer: wait for events only
	switch {
	case len(l.after) > 0:
		timeout = 0
	case l.wheel.count > 0:
		timeout = l.wheel.untilNext(time.Now())
	}
	n, err := l.p.wait(timeout)
	if err != nil {
		return err
	}
	l.now = time.Now()
	l.pass++
	woken := false
	for i := range n {
		fd, ev := l.p.event(i)
		if fd < 0 {
			woken = true
			continue
		}
		if fd >= len(l.fds) {
			continue
		}
		// A slot added in this pass holds a new fd that reuses the number of one
		// closed after the poll: the event was for the closed one.
		if s := &l.fds[fd]; s.h != nil && s.pass != l.pass {
			s.h.OnEvents(ev)
		}
	}
	if woken {
		l.p.drainWake()
		l.runQueued()
	}
	l.wheel.advance(l.now)
	l.runAfterPass()
	return nil
}

// runQueued runs the functions queued by Execute so far. From here on, a function
// queued signals the poller again, so none waits for an unrelated event.
func (l *Loop) runQueued() {
	l.mu.Lock()
	l.woken = false
	run := l.queue
	l.queue = l.spare[:0]
	l.mu.Unlock()
	for i, f := range run {
		run[i] = nil
		f()
	}
	l.spare = run[:0]
}

// runAfterPass runs the AfterPass functions, including those they queue.
func (l *Loop) runAfterPass() {
	for i := 0; i < len(l.after); i++ {
		f := l.after[i]
		l.after[i] = nil
		f()
	}
	l.after = l.after[:0]
}

// syscallError names the failing system call, as the os package does.
func syscallError(name string, err error) error {
	return os.NewSyscallError(name, err)
}
