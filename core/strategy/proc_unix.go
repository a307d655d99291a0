//go:build unix

package strategy

import (
	"errors"
	"syscall"
)

// killGroup kills the process group that the plugin with pid leads (none for pid 0).
func killGroup(pid int) {
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// processGone reports whether no process has pid.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
