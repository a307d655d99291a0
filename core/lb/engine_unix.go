//go:build linux || darwin || freebsd || netbsd || openbsd

package lb

import (
	"runtime"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/engine"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// eventLoopRuns: the eventloop engine runs on this system.
const eventLoopRuns = true

// startEventLoop starts the eventloop engine on addr, with a loop per CPU.
func (l *LB) startEventLoop(cfg *config.Config, addr string) (dataPlane, error) {
	lbc := cfg.LoadBalancer
	t := lbc.Timeouts
	return engine.Start(engine.Config{
		Addr: addr, Loops: runtime.GOMAXPROCS(0),
		Handler: l.handler, Pool: l.pool, Backends: l.backends, Status: l.source.JSON,
		Limits: h1.Limits{MaxHeaderBytes: lbc.Limits.MaxHeaderBytes, MaxHeaders: lbc.Limits.MaxHeaders},
		Timeouts: engine.Timeouts{Connect: t.Connect.D(), ResponseHeader: t.ResponseHeader.D(), Idle: t.Idle.D(),
			ReadHeader: t.ReadHeader.D(), BodyIdle: t.BodyIdle.D()},
		Log: l.log.Named("engine"),
	})
}
