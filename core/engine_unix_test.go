//go:build linux || darwin || freebsd || netbsd || openbsd

package main

// eventLoopEngine: the eventloop engine runs here, so the suite runs on it too.
const eventLoopEngine = true
