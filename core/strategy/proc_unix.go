//go:build unix

package strategy

import (
	"errors"
	"syscall"
)

// killGroup kills the process group that the plugin with pid leads.
func killGroup(pid int) { _ = syscall.Kill(-pid, syscall.SIGKILL) }

// processGone reports whether no process has pid.
func processGone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }
