package lb

import (
	"context"
	"fmt"
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
	var extras []*extra
	var kept map[*extra]bool // of extras, those that serve on from l.extras
	extrasNew := false
	access := l.access
	undo := func(err error) error {
		if fr != nil {
			fr.drain(time.Second, l.log)
		}
		for _, x := range extras {
			if !kept[x] {
				x.drain(time.Second, l)
			}
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
	if extrasChanged(prev, next) {
		var err error
		if extras, kept, err = l.startExtras(prev, next, l.extras); err != nil {
			return undo(err)
		}
		extrasNew = true
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
	plan, err := l.planPools(ctx, prev, next)
	if err != nil {
		return undo(err)
	}

	// 2. Apply; nothing below fails.
	l.pool.Resize(setup.PoolConfig(next))
	l.cfg = next // what the pools' drains and backends read from now on
	pools := make([]*poolState, 0, len(plan.pools))
	for _, ps := range plan.pools {
		ep, _ := next.Pool(ps.name)
		if plan.added[ps] {
			ps.start()
		} else {
			ps.apply(next, ep, plan.pickers[ps])
		}
		pools = append(pools, ps)
	}
	l.publishPools(pools) // default stays first, with the set it had: status reads it
	if access != l.access {
		old := l.access
		l.access = access
		// A request writes its line where the log is when it ends; the old one
		// closes (writing what it holds) once no request can still be on its way
		// there, after the longest drain.
		time.AfterFunc(next.LoadBalancer.Timeouts.Shutdown.D(), old.Close)
	}
	l.proxy.SetSettings(settings)
	// The data-plane processes hear of new pools and strategies before the table
	// that routes to them.
	l.sendBackends()
	l.pluginChanged()
	l.switchRoutes(next)
	for _, ps := range plan.removed {
		ps.remove()
	}
	if len(plan.removed) > 0 {
		l.sendBackends()
	}
	if fr != nil {
		old := l.front
		l.front = fr
		go old.drain(next.LoadBalancer.Timeouts.Shutdown.D(), l.log)
	}
	if extrasNew {
		old := l.extras
		l.extras = extras
		for _, x := range old {
			if !kept[x] {
				go x.drain(next.LoadBalancer.Timeouts.Shutdown.D(), l)
			}
		}
	}
	if fr != nil || extrasNew {
		l.showListeners()
	}
	if adminMoved {
		if l.admin != nil {
			shutdownAdmin(l.admin)
		}
		l.admin = ad
	}
	l.applied(next)
	warn(l.log, next)
	if len(plan.pickers) > 0 || len(plan.added) > 0 || len(plan.removed) > 0 {
		l.restartScriptFollow(next)
	}
	l.log.Info("config applied", "generation", l.generation, "changed", describe(changed, next))
	return nil
}

// poolPlan is what an edit does to the pools: the pools of the edit in order (new
// ones built, with their strategies started), new pickers for pools that stay, and
// the pools that leave.
type poolPlan struct {
	pools   []*poolState
	added   map[*poolState]bool
	pickers map[*poolState]strategy.Picker
	removed []*poolState
}

// planPools prepares next's pools: a new pool is built and its strategy started, a
// pool whose strategy changed starts the new one, while the status shows it as
// strategy.pending. If one fails, what was started is stopped and the error
// returned. l.applyMu must be held.
func (l *LB) planPools(ctx context.Context, prev, next *config.Config) (*poolPlan, error) {
	plan := &poolPlan{added: map[*poolState]bool{}, pickers: map[*poolState]strategy.Picker{}}
	fail := func(err error) (*poolPlan, error) {
		for ps := range plan.added {
			ps.discard()
		}
		for _, pk := range plan.pickers {
			pk.Close()
		}
		return nil, err
	}
	running := map[string]*poolState{}
	for _, ps := range l.poolsOf() {
		running[ps.name] = ps
	}
	for _, name := range next.PoolNames() {
		ep, _ := next.Pool(name)
		ps := running[name]
		if ps != nil && strategyKey(prev, ps.cfg.Strategy) == strategyKey(next, ep.Strategy) {
			plan.pools = append(plan.pools, ps)
			continue
		}
		timeout := next.LoadBalancer.Timeouts.PluginStart.D()
		l.log.Info("starting the edit's strategy; the running one picks until it answers", "pool", name, "strategy", ep.Strategy, "timeout", timeout)
		l.source.SetPendingStrategy(&strategy.Pending{Name: ep.Strategy, Since: time.Now().UTC(),
			Reason: fmt.Sprintf("starting for pool %s; waiting for its first answer (timeout %s)", name, timeout)})
		if ps == nil {
			nps, err := l.newPool(ctx, next, ep)
			l.source.SetPendingStrategy(nil)
			if err != nil {
				return fail(err)
			}
			plan.added[nps] = true
			plan.pools = append(plan.pools, nps)
			continue
		}
		picker, err := l.startStrategy(ctx, next, ps, ep.Strategy)
		l.source.SetPendingStrategy(nil)
		if err != nil {
			return fail(err)
		}
		plan.pickers[ps] = picker
		plan.pools = append(plan.pools, ps)
	}
	for name, ps := range running {
		if _, ok := next.Pool(name); !ok {
			plan.removed = append(plan.removed, ps)
		}
	}
	return plan, nil
}

// switchRoutes routes requests by next's table from now on, in every process at
// once: each process readies the new table, then the shared generation word moves
// and each takes it at its next request. l.applyMu must be held.
func (l *LB) switchRoutes(next *config.Config) {
	l.routes++
	gen := l.routes
	l.proxy.Stage(routeTable(next, gen, l.poolsOf()))
	l.eachGroup(func(g planeGroup) { g.configure(next, gen) })
	l.shared.seg.Routes().Store(gen)
	l.eachGroup(func(g planeGroup) { g.committed(next, gen) })
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
