// Package plane is a data-plane process's own main. The control plane (package lb)
// re-executes the core's executable in this mode, once per process it wants; each
// serves the client port it is told, with one event loop, counting into the shared
// memory segment, picking over a pick channel of its own, and taking its
// configuration, backends and strategy from the control channel (package wire) until
// it is told to stop or the control plane is gone.
package plane

import (
	"os"

	"github.com/switchyard-lb/switchyard/core/plane/wire"
)

// Mode reports whether this process was started by a core as one of its data-plane
// processes (see Run): never on a system where they do not run.
func Mode() bool { return processesRun && os.Getenv(wire.Env) != "" }

// Run serves as a data-plane process: one event loop on the port the control plane
// names, with the backends' figures and the pool in the shared segment, the strategy
// over a pick channel of its own, and the configuration from the control channel on
// file descriptor wire.FD. It returns the exit code once told to stop, or at once
// when the control plane is gone.
func Run() int { return run() }
