// Package setup derives a data plane's parts from a configuration, the same way in the
// control plane's own process and in a data-plane process: the worker pool's and the
// request path's settings and failed-pick policy, the access log's file, and the
// eventloop engine's limits and timeouts.
package setup

import (
	"fmt"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// PoolConfig is the worker pool's configuration under cfg (threadpool).
func PoolConfig(cfg *config.Config) pool.Config {
	tp := cfg.Threadpool
	return pool.Config{
		MinWorkers: tp.MinWorkers, MaxWorkers: tp.MaxWorkers, QueueCapacity: tp.QueueCapacity,
		QueueTimeout: tp.QueueTimeout.D(), IdleTimeout: tp.IdleTimeout.D(),
	}
}

// ProxySettings are the request path's settings under cfg, with its access log lines
// written to access (none when access is nil). It fails when servers.ca cannot be
// read.
func ProxySettings(cfg *config.Config, access *AccessLog) (exchange.Settings, error) {
	lbc := cfg.LoadBalancer
	s := exchange.Settings{
		StatusPath: lbc.StatusPath, Retries: lbc.Retries, ReuseAlways: lbc.Reuse == config.ReuseAlways, MaxHeaders: lbc.Limits.MaxHeaders,
		ConnectTimeout: lbc.Timeouts.Connect.D(), Idle: lbc.Timeouts.Idle.D(),
	}
	if access != nil {
		s.AccessLog = access.log
	}
	var err error
	if s.BackendTLS, err = config.BackendTLS(cfg); err != nil {
		return s, fmt.Errorf("servers.ca: %w", err)
	}
	return s, nil
}

// SetFailurePolicy tells p, if it can fail, what a failed pick gets under cfg
// (plugins.NAME.on_failure).
func SetFailurePolicy(p strategy.Picker, cfg *config.Config) {
	if f, ok := p.(interface{ SetRefuse(bool) }); ok {
		f.SetRefuse(cfg.Refuses())
	}
}
