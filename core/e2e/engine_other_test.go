//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package e2e

// eventLoopEngine: the event loop does not run here; the suite runs once, on the
// goroutine-per-connection front.
const eventLoopEngine = false
