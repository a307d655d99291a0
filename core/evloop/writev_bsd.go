//go:build freebsd || netbsd

package evloop

import "golang.org/x/sys/unix"

// writev writes the pieces in turn, stopping at the first short write.
func writev(fd int, pieces [][]byte) (int, error) {
	total := 0
	for _, p := range pieces {
		n, err := unix.Write(fd, p)
		if n > 0 {
			total += n
		}
		if err != nil || n < len(p) {
			if total > 0 {
				return total, nil
			}
			return total, err
		}
	}
	return total, nil
}
