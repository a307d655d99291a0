//go:build unix && !linux

package strategy

import "syscall"

// pluginProcAttr starts a plugin as the leader of its own process group.
func pluginProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
