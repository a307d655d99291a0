package evloop

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read, Write, Writev and Peek are the system calls of a loop's non-blocking
// sockets. On Linux they are made without telling the Go scheduler
// (syscall.RawSyscall): they never block, and the scheduler hands the processor of a
// thread it finds in a system call to another thread (a futex wake-up and a context
// switch), and keeps its monitor thread waking every 20 µs while that happens. A loop
// spends most of its time in these calls, so through the scheduler each request paid
// for two sleeps of the monitor and a share of hand-offs. The loop's one blocking
// call, the wait for events, still goes through the scheduler.

// Read reads from the non-blocking socket fd, as unix.Read.
func Read(fd int, p []byte) (int, error) { return transfer(unix.SYS_READ, fd, p) }

// Write writes to the non-blocking socket fd, as unix.Write.
func Write(fd int, p []byte) (int, error) { return transfer(unix.SYS_WRITE, fd, p) }

// transfer makes the read or write system call trap on fd with p.
func transfer(trap uintptr, fd int, p []byte) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	r, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(ptr), uintptr(len(p)))
	return result(r, e)
}

// maxIovecs is the most pieces one Writev sends; the caller sends the rest after.
const maxIovecs = 16

// Writev writes the pieces to the non-blocking socket fd with one system call, the
// first maxIovecs non-empty ones at most; it returns the bytes written, which may end
// within any piece.
func Writev(fd int, pieces [][]byte) (int, error) {
	var iov [maxIovecs]unix.Iovec
	n := 0
	for _, p := range pieces {
		if len(p) == 0 {
			continue
		}
		if n == maxIovecs {
			break
		}
		iov[n].Base = &p[0]
		iov[n].SetLen(len(p))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	r, _, e := syscall.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
	return result(r, e)
}

// Peek reports whether the socket fd has nothing to read and is not at its end: a
// recv(MSG_PEEK) that would block. It reads nothing.
func Peek(fd int) bool {
	var b [1]byte
	_, _, e := syscall.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	return e == unix.EAGAIN
}

func result(r uintptr, e syscall.Errno) (int, error) {
	if e != 0 {
		return int(r), e
	}
	return int(r), nil
}
