package lb

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/plane/setup"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// Reload applies config.json's new content: it is parsed and validated first, and a
// refused edit changes nothing but the status's last_error (logged once). A good
// edit clears last_error.
func (l *LB) Reload(data []byte, path string) error {
	return l.ReloadContext(context.Background(), data, path)
}

// ReloadContext is Reload, abandoned if ctx ends before the edit applies, as when a
// later edit supersedes it: a strategy plugin it is still starting is stopped with
// its process group, and nothing changes. An abandoned edit is logged with ctx's
// cause, and neither counted nor shown as refused.
func (l *LB) ReloadContext(ctx context.Context, data []byte, path string) error {
	next, err := config.Parse(data, path)
	if err == nil {
		err = l.overrides.Apply(next)
	}
	if err == nil {
		err = Validate(next)
	}
	if err == nil {
		err = l.ApplyContext(ctx, next)
	}
	if err != nil && ctx.Err() != nil {
		l.log.Info("config edit abandoned before it applied; the running configuration is unchanged", "file", path, "reason", context.Cause(ctx))
		return err
	}
	l.source.CountReload(err == nil)
	if err != nil {
		l.source.SetLastError(err.Error())
		l.log.Error("config refused; the running configuration is unchanged", "file", path, "error", err)
		return err
	}
	return nil
}

// Apply changes the running load balancer to next, which must have passed Validate,
// part by part and without dropping a request. What can fail (a new listener, a new
// strategy) is prepared first; if it fails nothing changes and the error is returned.
func (l *LB) Apply(next *config.Config) error {
	return l.ApplyContext(context.Background(), next)
}

// ApplyContext is Apply, abandoned if ctx ends before next applies: a new strategy
// still starting is stopped, nothing changes, and the error wraps ctx's cause.
// While a new strategy starts, the status shows it as strategy.pending.
func (l *LB) ApplyContext(ctx context.Context, next *config.Config) error {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if ctx.Err() != nil {
		return fmt.Errorf("config edit abandoned: %w", context.Cause(ctx))
	}
	prev := l.cfg
	changed := config.Diff(prev, next)

	// 1. Prepare what can fail; a failure undoes what was prepared before it.
	var fr *front
	var ad *admin
	access := l.access
	undo := func(err error) error {
		if fr != nil {
			fr.drain(time.Second, l.log)
		}
		if ad != nil {
			_ = ad.server.Close()
		}
		if access != l.access {
			access.Close()
		}
		return err
	}
	if frontKeyOf(next) != l.front.key {
		samePort := next.LoadBalancer.Port == prev.LoadBalancer.Port && next.LoadBalancer.Host == prev.LoadBalancer.Host
		var err error
		if fr, err = l.newFront(next, !samePort); err != nil {
			return undo(err)
		}
	}
	adminMoved := next.LoadBalancer.AdminAddr != prev.LoadBalancer.AdminAddr
	if adminMoved && next.LoadBalancer.AdminAddr != "" {
		var err error
		if ad, err = newAdmin(next.LoadBalancer.AdminAddr, l.source, l.log); err != nil {
			return undo(err)
		}
	}
	if next.LoadBalancer.AccessLog != prev.LoadBalancer.AccessLog || next.Path != prev.Path {
		var err error
		if access, err = setup.OpenAccessLog(next, l.logJSON); err != nil {
			access = l.access
			return undo(err)
		}
	}
	settings, err := setup.ProxySettings(next, access)
	if err != nil {
		return undo(err)
	}
	var picker strategy.Picker
	if strategyChanged(prev, next) {
		name, timeout := next.LoadBalancer.Strategy, next.LoadBalancer.Timeouts.PluginStart.D()
		l.log.Info("starting the edit's strategy; the running one picks until it answers", "strategy", name, "timeout", timeout)
		l.source.SetPendingStrategy(&strategy.Pending{Name: name, Since: time.Now().UTC(),
			Reason: fmt.Sprintf("starting; waiting for its first answer (timeout %s)", timeout)})
		defer l.source.SetPendingStrategy(nil) // switched to, or failed: either way no longer pending
		if picker, err = l.startStrategy(ctx, next); err != nil {
			return undo(err)
		}
	}

	// 2. Apply; nothing below fails.
	l.pool.Resize(setup.PoolConfig(next))
	discoveryChanged := !reflect.DeepEqual(prev.Servers.Discovery, next.Servers.Discovery)
	if discoveryChanged {
		l.resolveNow(next)
	}
	l.updateBackends(next)
	l.checker.SetConfig(checkConfig(next))
	l.passive.SetConfig(passiveConfig(next))
	if access != l.access {
		old := l.access
		l.access = access
		// A request writes its line where the log is when it ends; the old one
		// closes (writing what it holds) once no request can still be on its way
		// there, after the longest drain.
		time.AfterFunc(next.LoadBalancer.Timeouts.Shutdown.D(), old.Close)
	}
	l.proxy.SetSettings(settings)
	if picker != nil {
		// No longer pending once it picks: cleared first, so that no status shows
		// the new strategy (or the new generation) with its start still pending.
		l.source.SetPendingStrategy(nil)
		setup.SetFailurePolicy(picker, next)
		old := l.proxy.Picker()
		l.proxy.SetPicker(picker)
		old.Close()
		l.pluginChanged()
	} else {
		setup.SetFailurePolicy(l.proxy.Picker(), next)
	}
	l.eachGroup(func(g planeGroup) { g.configure(next) })
	if fr != nil {
		old := l.front
		l.front = fr
		l.showListeners()
		go old.drain(next.LoadBalancer.Timeouts.Shutdown.D(), l.log)
	}
	if adminMoved {
		if l.admin != nil {
			shutdownAdmin(l.admin)
		}
		l.admin = ad
	}
	l.applied(next)
	warn(l.log, next)
	if picker != nil {
		l.restartScriptFollow(next)
	}
	if discoveryChanged {
		l.watchDiscovery(next)
	}
	l.log.Info("config applied", "generation", l.generation, "changed", describe(changed, next))
	return nil
}

// strategyChanged reports whether next needs a new strategy instance: another name,
// or another command, arguments or options for the same one.
func strategyChanged(prev, next *config.Config) bool {
	name := next.LoadBalancer.Strategy
	if name != prev.LoadBalancer.Strategy {
		return true
	}
	p, n := prev.Plugins[name], next.Plugins[name]
	return p.Command != n.Command || p.Script != n.Script || !reflect.DeepEqual(p.Args, n.Args) || string(p.Options) != string(n.Options)
}

// describe lists the changed keys for the log, with their new values where they
// are scalars: "threadpool.max_workers=80, servers.backends".
func describe(changed []string, next *config.Config) string {
	if len(changed) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range changed {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		if v, ok := next.Value(k); ok {
			fmt.Fprintf(&b, "=%s", v)
		}
	}
	return b.String()
}

func shutdownAdmin(a *admin) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.server.Shutdown(ctx)
}
