package lb

import (
	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/plane/wire"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// planeGroup is a running group of data-plane processes (see supervisor_unix.go).
type planeGroup interface {
	send(m *wire.Message)
	// configure sends cfg, whose routing table is of generation gen, and waits
	// (briefly) until each process has the table ready.
	configure(cfg *config.Config, gen uint64)
	// committed records that the table of gen, cfg's, is in force.
	committed(cfg *config.Config, gen uint64)
}

// eachGroup calls f for each running group of data-plane processes.
func (l *LB) eachGroup(f func(planeGroup)) {
	l.groupsMu.Lock()
	groups := make([]planeGroup, 0, len(l.groups))
	for g := range l.groups {
		groups = append(groups, g)
	}
	l.groupsMu.Unlock()
	for _, g := range groups {
		f(g)
	}
}

// planeBackends lists every pool's backends for data-plane processes: their slots and
// whether they take new requests.
func (l *LB) planeBackends() []wire.Backend {
	var out []wire.Backend
	for _, ps := range l.poolsOf() {
		for _, b := range ps.set.Snapshot().All {
			slot, epoch := l.shared.slotOf(backend.SlotKey(b.Pool, b.Key))
			out = append(out, wire.Backend{Pool: b.Pool, URL: b.URL, Key: b.Key, Weight: b.Weight(), Priority: b.Priority(), Source: b.Source(),
				Slot: slot, Epoch: epoch, Candidate: b.Candidate()})
		}
	}
	return out
}

// planePools lists the pools for data-plane processes: retries, counters and how
// each picks now.
func (l *LB) planePools() []wire.Pool {
	pools := l.poolsOf()
	out := make([]wire.Pool, len(pools))
	for i, ps := range pools {
		out[i] = wire.Pool{Name: ps.name, Retries: ps.up.Retries(), Passive: int(ps.threshold.Load()),
			Counters: ps.slot, Plugin: planePlugin(ps.up.Picker())}
	}
	return out
}

// planePlugin says how data-plane processes pick with p.
func planePlugin(p strategy.Picker) *wire.Plugin {
	switch p := p.(type) {
	case *strategy.Plugin:
		pp := &wire.Plugin{Name: p.Name()}
		if ep, ok := p.Endpoint(); ok {
			pp.Endpoint = &ep
		}
		return pp
	case *strategy.Local:
		return &wire.Plugin{Name: p.Name(), Local: true}
	}
	return nil
}

// sendBackends sends the pools and their backends to the data-plane processes. The
// message is made and sent under sendMu, so that processes hear the pools in the
// order they changed: a list made before an edit never arrives after the edit's.
func (l *LB) sendBackends() {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	m := &wire.Message{Kind: wire.KindBackends, Backends: l.planeBackends(), Pools: l.planePools()}
	l.eachGroup(func(g planeGroup) { g.send(m) })
}

// followBackends sends the backends to the data-plane processes each time a set or
// a backend's state changes, until l stops.
func (l *LB) followBackends() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.backendsChanged:
		}
		l.sendBackends()
	}
}

// pluginChanged sends the strategies' endpoints to the data-plane processes.
func (l *LB) pluginChanged() {
	if l.proxy == nil {
		return // still being built: the processes start from what is in force
	}
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	m := &wire.Message{Kind: wire.KindPlugin, Pools: l.planePools()}
	l.eachGroup(func(g planeGroup) { g.send(m) })
}

// ejectFrom ejects the backend with key of pool whose failures in a row a
// data-plane process saw cross the threshold.
func (l *LB) ejectFrom(pool, key, lastErr string) {
	ps := l.poolNamed(pool)
	if ps == nil {
		return
	}
	if b := ps.backendByKey(key); b != nil {
		if lastErr != "" {
			b.NoteError(lastErr)
		}
		ps.passive.Eject(b)
	}
}

// backendByKey is the backend of pool's set with key, nil when there is none.
func (l *LB) backendByKey(pool, key string) *backend.Backend {
	if ps := l.poolNamed(pool); ps != nil {
		return ps.backendByKey(key)
	}
	return nil
}

// backendByKey is the backend of the pool's set with key, nil when there is none.
func (ps *poolState) backendByKey(key string) *backend.Backend {
	for _, b := range ps.set.Snapshot().All {
		if b.Key == key {
			return b
		}
	}
	return nil
}
