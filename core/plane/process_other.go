//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package plane

// processesRun: data-plane processes do not run on this system (no eventloop engine).
const processesRun = false

// run is never called on this system (see Mode).
func run() int { return 1 }
