//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package lb

import (
	"errors"

	"github.com/switchyard-lb/switchyard/core/config"
)

// eventLoopRuns: the eventloop engine does not run on this system.
const eventLoopRuns = false

// startEventLoop refuses: the eventloop engine runs on Linux, macOS and the BSDs.
func (l *LB) startEventLoop(*config.Config, string) (dataPlane, error) {
	return nil, errors.New(`load_balancer.engine: "eventloop" runs on Linux, macOS and the BSDs; use "fasthttp" here`)
}

// processesOf is 1: the eventloop engine, and its data-plane processes, do not run
// on this system.
func processesOf(*config.Config) int { return 1 }

// DataPlaneMode reports whether this process was started as a data-plane process:
// never on this system.
func DataPlaneMode() bool { return false }

// RunDataPlane is never called on this system (see DataPlaneMode).
func RunDataPlane() int { return 1 }
