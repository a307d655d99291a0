// Package setup derives a data plane's parts from a configuration, the same way in the
// control plane's own process and in a data-plane process: the worker pool's and the
// request path's settings and failed-pick policy, the access log's file, and the
// eventloop engine's limits and timeouts.
package setup

import (
	"github.com/switchyard-lb/switchyard/core/backend"

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
		StatusPath: lbc.StatusPath, ReuseAlways: lbc.Reuse == config.ReuseAlways, MaxHeaders: lbc.Limits.MaxHeaders,
		ConnectTimeout: lbc.Timeouts.Connect.D(), Idle: lbc.Timeouts.Idle.D(),
	}
	if access != nil {
		s.AccessLog = access.log
	}
	return s, nil
}

// SetFailurePolicy tells p, the picker of strategy name, if it can fail, what a
// failed pick gets under cfg (plugins.NAME.on_failure).
func SetFailurePolicy(p strategy.Picker, name string, cfg *config.Config) {
	if f, ok := p.(interface{ SetRefuse(bool) }); ok {
		f.SetRefuse(cfg.RefusesFor(name))
	}
}

// Table is the routing table of cfg, generation gen, over the pools that upstream
// gives by name (nil for a pool it does not run, whose routes then answer as if
// the pool had no backend). Requests that match no route go to default, or get 404
// no_route when servers has no backends and no discovery.
//
// Each pool's Upstream is told how to reach its https backends (ca,
// tls_skip_verify).
func Table(cfg *config.Config, gen uint64, upstream func(name string) *exchange.Upstream) *exchange.Table {
	upstream = withTLS(cfg, upstream)
	specs := make([]exchange.RouteSpec, len(cfg.Routes))
	for i, r := range cfg.Routes {
		m := r.Match
		spec := exchange.RouteSpec{Match: exchange.Match{Host: m.Host, Path: m.Path, PathPrefix: m.PathPrefix, Methods: m.Methods, Headers: m.Headers}}
		rt := &spec.Route
		switch {
		case r.Redirect != nil:
			rt.Action, rt.Redirect = exchange.DoRedirect, exchange.NewRedirect(r.Redirect.To, r.Redirect.Status)
		case r.Respond != nil:
			rt.Action = exchange.DoRespond
			rt.Reply = exchange.Reply{Status: r.Respond.Status, ContentType: r.Respond.ContentType, Body: []byte(r.Respond.Body)}
		default:
			rt.Action, rt.Upstream, rt.StripPrefix = exchange.ToPool, upstream(r.Pool), r.StripPrefix
			if rt.Upstream == nil {
				rt.Upstream = exchange.NewUpstream(r.Pool, backend.NewPoolSet(r.Pool, nil), strategy.NewLocal("leastconn", strategy.NewBundled("leastconn")), 0)
			}
			if h := r.RequestHeaders; h != nil {
				rt.Request = exchange.NewHeaderRules(h.Set, h.Remove)
			}
			if h := r.ResponseHeaders; h != nil {
				rt.Response = exchange.NewHeaderRules(h.Set, h.Remove)
			}
		}
		specs[i] = spec
	}
	var def *exchange.Upstream
	if len(cfg.Servers.Backends) > 0 || cfg.Servers.Discovery != nil {
		def = upstream(config.DefaultPool)
	}
	return exchange.NewTable(gen, specs, def)
}

// withTLS wraps upstream so that each pool it gives is told, once, its TLS to https
// backends under cfg.
func withTLS(cfg *config.Config, upstream func(string) *exchange.Upstream) func(string) *exchange.Upstream {
	told := map[string]*exchange.Upstream{}
	return func(name string) *exchange.Upstream {
		if u, ok := told[name]; ok {
			return u
		}
		u := upstream(name)
		told[name] = u
		if u == nil {
			return nil
		}
		if ep, ok := cfg.Pool(name); ok {
			// Validation read the same files; a CA file broken since keeps the
			// pool's TLS as it was.
			if base, key, err := config.BackendTLS(cfg, ep); err == nil {
				u.SetTLS(exchange.NewBackendTLS(base, key))
			}
		}
		return u
	}
}
