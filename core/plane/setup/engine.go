//go:build linux || darwin || freebsd || netbsd || openbsd

package setup

import (
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/engine"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// StartEngine starts the eventloop engine with c's address, loops and parts, and
// cfg's limits (load_balancer.limits) and timeouts (load_balancer.timeouts) in place
// of c's.
func StartEngine(cfg *config.Config, c engine.Config) (*engine.Engine, error) {
	lbc := cfg.LoadBalancer
	t := lbc.Timeouts
	c.Limits = h1.Limits{MaxHeaderBytes: lbc.Limits.MaxHeaderBytes, MaxHeaders: lbc.Limits.MaxHeaders}
	c.Timeouts = engine.Timeouts{Connect: t.Connect.D(), ResponseHeader: t.ResponseHeader.D(), Idle: t.Idle.D(),
		ReadHeader: t.ReadHeader.D(), BodyIdle: t.BodyIdle.D()}
	return engine.Start(c)
}
