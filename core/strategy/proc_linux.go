package strategy

import "syscall"

// pluginProcAttr starts a plugin as the leader of its own process group, killed by
// Linux when the core dies, even by SIGKILL (see spawn).
func pluginProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
