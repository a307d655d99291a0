//go:build linux || darwin || freebsd || netbsd || openbsd

package e2e

// eventLoopEngine: the event loop runs here, so the suite runs on it first.
const eventLoopEngine = true
