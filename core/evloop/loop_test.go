//go:build linux || darwin || freebsd || netbsd || openbsd

package evloop

import (
	"errors"
	"net"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hang bounds how long a test waits for something that must happen; reaching it means
// a hang, not slowness.
const hang = 30 * time.Second

// startLoop returns a running Loop, closed and waited for at the end of the test.
func startLoop(t testing.TB) *Loop {
	t.Helper()
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run() }()
	t.Cleanup(func() {
		l.Close()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
	return l
}

// onLoop runs f on l's goroutine and waits for it to return.
func onLoop(t testing.TB, l *Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	l.Execute(func() {
		defer close(done)
		f()
	})
	select {
	case <-done:
	case <-time.After(hang):
		t.Fatal("the loop did not run a queued function")
	}
}

// socketpair returns two connected non-blocking stream sockets.
func socketpair(t testing.TB) (a, b int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if err := unix.SetNonblock(fd, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
	}
	return fds[0], fds[1]
}

// handlerFunc adapts a function to Handler.
type handlerFunc func(Events)

func (f handlerFunc) OnEvents(ev Events) { f(ev) }

// drain reads fd until EAGAIN and returns how many bytes it read.
func drain(fd int, buf []byte) int {
	total := 0
	for {
		n, err := unix.Read(fd, buf)
		if n <= 0 || err != nil {
			return total
		}
		total += n
	}
}

func TestCloseEndsRun(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run() }()
	onLoop(t, l, func() {}) // Run is serving
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
	case <-time.After(hang):
		t.Fatal("Run did not return after Close")
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close() = %v, want ErrClosed", err)
	}
	if err := l.Run(); !errors.Is(err, ErrClosed) {
		t.Errorf("Run() after Close = %v, want ErrClosed", err)
	}
	a, _ := socketpair(t)
	if err := l.Add(a, Readable, handlerFunc(func(Events) {})); !errors.Is(err, ErrClosed) {
		t.Errorf("Add() after Close = %v, want ErrClosed", err)
	}
	l.Execute(func() { t.Error("function queued after Close ran") })
	l.Wake()
}

func TestCloseFromCallback(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run() }()
	ran := make(chan struct{})
	l.Execute(func() {
		l.Close()
		l.AfterPass(func() { close(ran) }) // the pass completes
	})
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
	case <-time.After(hang):
		t.Fatal("Run did not return after Close from a callback")
	}
	select {
	case <-ran:
	default:
		t.Error("the pass in which Close was called did not finish")
	}
}

func TestCloseBeforeRun(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := l.Run(); !errors.Is(err, ErrClosed) {
		t.Errorf("Run() = %v, want ErrClosed", err)
	}
}

func TestExecuteConcurrent(t *testing.T) {
	l := startLoop(t)
	const goroutines, each = 16, 2000
	last := make([]int, goroutines) // loop goroutine only
	total := 0
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := 1; i <= each; i++ {
				l.Execute(func() {
					if last[g] != i-1 {
						t.Errorf("goroutine %d: function %d ran after %d", g, i, last[g])
					}
					last[g] = i
					total++
				})
			}
		})
	}
	wg.Wait()
	onLoop(t, l, func() {
		if total != goroutines*each {
			t.Errorf("%d functions ran, want %d", total, goroutines*each)
		}
	})
}

func TestAfterPassOncePerPass(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Three fds ready in one pass; each handler asks for the same flush, which runs
	// once, after all three, and sees the same Now.
	var got []int
	var batches [][]int
	var seen []time.Time
	scheduled := false
	flush := func() {
		batches = append(batches, got)
		got = nil
		scheduled = false
		seen = append(seen, l.Now())
	}
	peers := make([]int, 3)
	buf := make([]byte, 16)
	for i := range peers {
		a, b := socketpair(t)
		peers[i] = b
		err := l.Add(a, Readable, handlerFunc(func(Events) {
			drain(a, buf)
			got = append(got, i)
			seen = append(seen, l.Now())
			if !scheduled {
				scheduled = true
				l.AfterPass(flush)
			}
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range peers {
		unix.Write(b, []byte("x"))
	}
	if err := l.runPass(); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 1 || len(batches[0]) != 3 {
		t.Fatalf("after one pass with 3 ready fds, flushes = %v, want one of 3", batches)
	}
	for _, at := range seen {
		if !at.Equal(seen[0]) {
			t.Errorf("Now() within one pass = %v, want %v throughout", at, seen[0])
		}
	}
	unix.Write(peers[1], []byte("x"))
	if err := l.runPass(); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 2 || len(batches[1]) != 1 || batches[1][0] != 1 {
		t.Fatalf("after a second pass, flushes = %v, want [[...] [1]]", batches)
	}

	// Queued by an AfterPass function: same pass. Queued outside a pass: the next
	// pass runs it without waiting for an event.
	var order []string
	l.AfterPass(func() {
		order = append(order, "first")
		l.AfterPass(func() { order = append(order, "nested") })
	})
	l.AfterPass(func() { order = append(order, "second") })
	if err := l.runPass(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"first", "second", "nested"}; !slices.Equal(order, want) {
		t.Errorf("AfterPass order = %v, want %v", order, want)
	}
}

// TestStaleEventAfterFdReuse closes, within a pass, an fd whose event is still to be
// delivered in that pass and registers a new socket that got the same number: the
// new handler must not be told of the old socket's event.
func TestStaleEventAfterFdReuse(t *testing.T) {
	for _, forget := range []bool{false, true} {
		t.Run(map[bool]string{false: "Remove", true: "Forget"}[forget], func(t *testing.T) { staleEventAfterFdReuse(t, forget) })
	}
}

// staleEventAfterFdReuse unregisters a closed fd with Remove, or with Forget.
func staleEventAfterFdReuse(t *testing.T, forget bool) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a1, b1 := socketpair(t)
	a2, b2 := socketpair(t)
	buf := make([]byte, 16)
	newCalls, oldCalls := 0, 0
	replaced := false
	// Whichever of the two runs first replaces the other.
	replace := func(victim int) {
		if replaced {
			return
		}
		replaced = true
		if forget {
			l.Forget(victim)
		} else if err := l.Remove(victim); err != nil {
			t.Fatal(err)
		}
		unix.Close(victim)
		// The victim's cleanup closes c, which takes its number.
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		c, d := fds[0], fds[1]
		t.Cleanup(func() { unix.Close(d) })
		if c != victim {
			t.Skipf("new socket got fd %d, not the freed %d", c, victim)
		}
		unix.SetNonblock(c, true)
		unix.Write(d, []byte("y")) // readable at once, yet reported from the next poll on
		if err := l.Add(c, Readable, handlerFunc(func(Events) { newCalls++; drain(c, buf) })); err != nil {
			t.Fatal(err)
		}
	}
	l.Add(a1, Readable, handlerFunc(func(Events) { oldCalls++; drain(a1, buf); replace(a2) }))
	l.Add(a2, Readable, handlerFunc(func(Events) { oldCalls++; drain(a2, buf); replace(a1) }))
	unix.Write(b1, []byte("x"))
	unix.Write(b2, []byte("x"))
	if err := l.runPass(); err != nil {
		t.Fatal(err)
	}
	if oldCalls != 1 || newCalls != 0 {
		t.Fatalf("in the pass of the replacement: old handlers called %d times, new %d; want 1, 0", oldCalls, newCalls)
	}
	if err := l.runPass(); err != nil {
		t.Fatal(err)
	}
	if newCalls != 1 {
		t.Fatalf("in the next pass the new handler was called %d times, want 1", newCalls)
	}
}

// TestNoAllocsPerEvent checks that a pass serving a readable fd, a timer re-arm, an
// AfterPass function and an Execute function allocates nothing.
func TestNoAllocsPerEvent(t *testing.T) {
	l, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, b := socketpair(t)
	buf := make([]byte, 64)
	timer := l.NewTimer(func() {})
	after := func() {}
	exec := func() {}
	calls := 0
	h := handlerFunc(func(Events) {
		calls++
		drain(a, buf)
		timer.Reset(time.Minute)
		l.AfterPass(after)
	})
	if err := l.Add(a, Readable, h); err != nil {
		t.Fatal(err)
	}
	msg := []byte("ping")
	pass := func() {
		unix.Write(b, msg)
		l.Execute(exec)
		if err := l.runPass(); err != nil {
			t.Fatal(err)
		}
	}
	pass() // warm up: slices reach their size
	if n := testing.AllocsPerRun(1000, pass); n != 0 {
		t.Errorf("allocations per pass = %v, want 0", n)
	}
	if calls != 1002 {
		t.Errorf("handler called %d times in 1002 passes", calls)
	}
}

// TestBackpressure stops reading one connection and shows the peer's writes block once
// the kernel's buffers fill, then resumes and receives everything.
func TestBackpressure(t *testing.T) {
	l := startLoop(t)
	lfd, addr := listenLoopback(t)
	var (
		fd       int
		received int // loop goroutine only
	)
	buf := make([]byte, 32<<10)
	accepted := make(chan struct{})
	conn := handlerFunc(func(ev Events) {
		received += drain(fd, buf) // reads whenever told: only the interest stops it
	})
	onLoop(t, l, func() {
		err := l.Add(lfd, Readable, handlerFunc(func(Events) {
			nfd, _, err := Accept(lfd)
			if err != nil {
				return
			}
			fd = nfd
			if err := l.Add(fd, Readable, conn); err != nil {
				t.Error(err)
			}
			close(accepted)
		}))
		if err != nil {
			t.Fatal(err)
		}
	})
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted

	chunk := make([]byte, 64<<10)
	sent := 0
	write := func(deadline time.Time) error {
		c.SetWriteDeadline(deadline)
		n, err := c.Write(chunk)
		sent += n
		return err
	}
	waitReceived := func() {
		t.Helper()
		for start := time.Now(); ; {
			var got int
			onLoop(t, l, func() { got = received })
			if got == sent {
				return
			}
			if time.Since(start) > hang {
				t.Fatalf("server received %d bytes, want %d", got, sent)
			}
			time.Sleep(time.Millisecond)
		}
	}

	for range 16 {
		if err := write(time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	waitReceived()

	var paused int
	onLoop(t, l, func() {
		if err := l.Modify(fd, 0); err != nil {
			t.Fatal(err)
		}
		paused = received
	})
	const limit = 1 << 30
	var werr error
	for werr == nil && sent-paused < limit {
		werr = write(time.Now().Add(100 * time.Millisecond))
	}
	if !errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("writing %d bytes to a paused reader: err = %v, want a timeout", sent-paused, werr)
	}
	t.Logf("writes blocked after %d KiB in kernel buffers", (sent-paused)>>10)
	onLoop(t, l, func() {
		if received != paused {
			t.Errorf("received %d bytes while paused, want 0", received-paused)
		}
		if err := l.Modify(fd, Readable); err != nil {
			t.Fatal(err)
		}
	})
	for range 16 {
		if err := write(time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	waitReceived()
}

// listenLoopback returns a listener of this package on a free loopback port.
func listenLoopback(t testing.TB) (int, *net.TCPAddr) {
	t.Helper()
	fd, addr, err := Listen("127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd, addr
}
