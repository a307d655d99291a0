//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package main

// eventLoopEngine: the eventloop engine does not run here.
const eventLoopEngine = false
