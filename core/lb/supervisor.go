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
	configure(cfg *config.Config)
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

// planeBackends lists the backends for data-plane processes: their slots and
// whether they take new requests.
func (l *LB) planeBackends() []wire.Backend {
	all := l.backends.Snapshot().All
	out := make([]wire.Backend, 0, len(all))
	for _, b := range all {
		slot, epoch := l.shared.slotOf(b.Key)
		out = append(out, wire.Backend{URL: b.URL, Key: b.Key, Weight: b.Weight(), Priority: b.Priority(), Source: b.Source(), Slot: slot, Epoch: epoch, Candidate: b.Candidate()})
	}
	return out
}

// planePlugin says how data-plane processes pick now.
func (l *LB) planePlugin() *wire.Plugin {
	if l.proxy == nil {
		return nil
	}
	switch p := l.proxy.Picker().(type) {
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

// followBackends sends the backends to the data-plane processes each time the set or
// a backend's state changes, until l stops.
func (l *LB) followBackends() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.backendsChanged:
		}
		m := &wire.Message{Kind: wire.KindBackends, Backends: l.planeBackends()}
		l.eachGroup(func(g planeGroup) { g.send(m) })
	}
}

// pluginChanged sends the strategy's new endpoint to the data-plane processes.
func (l *LB) pluginChanged() {
	if pp := l.planePlugin(); pp != nil {
		m := &wire.Message{Kind: wire.KindPlugin, Plugin: pp}
		l.eachGroup(func(g planeGroup) { g.send(m) })
	}
}

// ejectFrom ejects the backend with key whose failures in a row a data-plane process
// saw cross the threshold.
func (l *LB) ejectFrom(key, lastErr string) {
	if b := l.backendByKey(key); b != nil {
		if lastErr != "" {
			b.NoteError(lastErr)
		}
		l.passive.Eject(b)
	}
}

// backendByKey is the backend of the set with key, nil when there is none.
func (l *LB) backendByKey(key string) *backend.Backend {
	for _, b := range l.backends.Snapshot().All {
		if b.Key == key {
			return b
		}
	}
	return nil
}
