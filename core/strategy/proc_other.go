//go:build !unix

package strategy

import (
	"os"
	"syscall"
)

// pluginProcAttr has nothing to add here.
func pluginProcAttr() *syscall.SysProcAttr { return nil }

// killGroup kills the plugin process with pid (this system has no process groups
// to stop its children with).
func killGroup(pid int) {
	if pid <= 0 {
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
}

// processGone reports whether no process has pid; unknown here, so false.
func processGone(int) bool { return false }
