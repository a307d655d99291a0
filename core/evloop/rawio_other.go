//go:build darwin || freebsd || netbsd || openbsd

package evloop

import "golang.org/x/sys/unix"

// Read reads from the non-blocking socket fd.
func Read(fd int, p []byte) (int, error) { return unix.Read(fd, p) }

// Write writes to the non-blocking socket fd.
func Write(fd int, p []byte) (int, error) { return unix.Write(fd, p) }

// Writev writes the pieces to the non-blocking socket fd; it returns the bytes
// written, which may end within any piece.
func Writev(fd int, pieces [][]byte) (int, error) { return writev(fd, pieces) }

// Peek reports whether the socket fd has nothing to read and is not at its end: a
// recv(MSG_PEEK) that would block. It reads nothing.
func Peek(fd int) bool {
	var b [1]byte
	_, _, err := unix.Recvfrom(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	return err == unix.EAGAIN
}
