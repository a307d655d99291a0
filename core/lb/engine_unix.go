//go:build linux || darwin || freebsd || netbsd || openbsd

package lb

import (
	"runtime"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/engine"
	"github.com/switchyard-lb/switchyard/core/plane/setup"
)

// eventLoopRuns: the eventloop engine runs on this system.
const eventLoopRuns = true

// startEventLoop starts the eventloop engine on addr: in data-plane processes of a
// loop each (processesOf), or in this process with a loop per CPU.
func (l *LB) startEventLoop(cfg *config.Config, addr string) (dataPlane, error) {
	if n := processesOf(cfg); n > 1 {
		return l.startPlanes(cfg, addr, n)
	}
	return l.startEngine(cfg, addr, runtime.GOMAXPROCS(0), func(answer func([]byte)) { answer(l.source.JSON()) })
}

// startEngine starts the eventloop engine in this process.
func (l *LB) startEngine(cfg *config.Config, addr string, loops int, status func(answer func([]byte))) (*engine.Engine, error) {
	return setup.StartEngine(cfg, engine.Config{
		Addr: addr, Loops: loops,
		Proxy: l.proxy, Status: status,
		Log: l.log.Named("engine"),
	})
}
