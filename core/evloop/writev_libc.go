//go:build darwin || openbsd

package evloop

import "golang.org/x/sys/unix"

// writev writes the pieces with one system call.
func writev(fd int, pieces [][]byte) (int, error) { return unix.Writev(fd, pieces) }
