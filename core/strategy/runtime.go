package strategy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
)

// RuntimeDir creates this process's directory for plugin sockets,
// $TMPDIR/switchyard-UID/PID, after removing the directories of processes that are
// gone (a core killed with SIGKILL cannot clean up after itself).
func RuntimeDir() (string, error) {
	base := filepath.Join(os.TempDir(), "switchyard-"+strconv.Itoa(os.Getuid()))
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", fmt.Errorf("creating the plugin runtime directory: %w", err)
	}
	entries, err := os.ReadDir(base)
	if err != nil {
		return "", fmt.Errorf("reading the plugin runtime directory: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if processGone(pid) {
			_ = os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
	dir := filepath.Join(base, strconv.Itoa(os.Getpid()))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the plugin runtime directory: %w", err)
	}
	return dir, nil
}

// spawn runs f on one OS thread that never exits. Plugin processes are started there
// so that their parent-death signal (Pdeathsig, which Linux ties to the thread that
// forked) fires only when the core itself dies.
func spawn(f func()) {
	spawnOnce.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the core
			for f := range spawnCh {
				f()
			}
		}()
	})
	done := make(chan struct{})
	spawnCh <- func() { defer close(done); f() }
	<-done
}

var (
	spawnOnce sync.Once
	spawnCh   = make(chan func())
)

// Spawn runs f on the thread from which the core starts its child processes, so that
// a process started by f with ChildProcAttr dies with the core, not with a thread.
func Spawn(f func()) { spawn(f) }

// ChildProcAttr are the attributes of a child process the core supervises: a process
// group of its own (a terminal's Ctrl-C reaches the core only, which stops its
// children in order) and, on Linux, death with the core.
func ChildProcAttr() *syscall.SysProcAttr { return pluginProcAttr() }
