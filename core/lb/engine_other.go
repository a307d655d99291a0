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
	return nil, errors.New(`load_balancer.engine: "eventloop" runs on Linux, macOS and the BSDs; use "nethttp" here`)
}

// processesOf is 1: the eventloop engine, and its data-plane processes, do not run
// on this system.
func processesOf(*config.Config) int { return 1 }
