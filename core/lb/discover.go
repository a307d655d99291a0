package lb

import (
	"context"
	"reflect"
	"slices"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/discovery"
	"github.com/switchyard-lb/switchyard/core/status"
)

// discoveryState is what the load balancer knows of a pool's discovery. Guarded by
// l.applyMu.
type discoveryState struct {
	cfg     *config.Discovery  // the record watched; nil when none
	found   []config.Backend   // the last known set
	stop    context.CancelFunc // stops the watcher
	watcher int                // counts watchers, so a stopped one's late report is ignored
	status  status.Discovery
}

// backendList is the pool's backends: those of config.json, then those found in DNS.
// l.applyMu must be held, or l not yet started.
func (ps *poolState) backendList() []config.Backend {
	if ps.cfg.Discovery == nil {
		return ps.cfg.Backends
	}
	return append(append([]config.Backend(nil), ps.cfg.Backends...), ps.disc.found...)
}

// resolveNow looks the pool's record up once, when it is new: a failed lookup keeps
// the last known set and is reported. l.applyMu must be held, or l not yet started.
func (ps *poolState) resolveNow() {
	d := ps.cfg.Discovery
	if d == nil {
		ps.disc.cfg, ps.disc.found = nil, nil
		ps.setDiscovery(nil)
		return
	}
	if reflect.DeepEqual(ps.disc.cfg, d) {
		return
	}
	dc := *d
	ps.disc.cfg = &dc
	ps.noteDiscovery(discovery.Resolve(context.Background(), d))
}

// noteDiscovery records a resolution in the status and the log, and keeps its
// backends unless it failed. What went wrong is logged when it differs from the last
// lookup's: the errors name the DNS server and the cause, without the exchange's
// ephemeral port, so a server that keeps refusing is logged once. l.applyMu must be
// held.
func (ps *poolState) noteDiscovery(r discovery.Result) (changed bool) {
	log := ps.log.Named("discovery")
	st := &ps.disc.status
	msg := ""
	if r.Err != nil {
		msg = r.Err.Error()
	}
	switch {
	case r.Backends == nil:
		st.Lookups.Error++
		if st.LastError != msg {
			log.Warn("lookup failed; keeping the last known backends", "error", msg, "backends", len(ps.disc.found))
		}
	case msg != "":
		st.Lookups.Partial++
		if st.LastError != msg {
			log.Warn("lookup incomplete; using the backends it found", "error", msg, "backends", len(r.Backends))
		}
	default:
		st.Lookups.OK++
		if st.LastError != "" {
			log.Info("lookup works again", "backends", len(r.Backends))
		}
	}
	st.LastError, st.Resolver = msg, r.Resolver
	if d := ps.disc.cfg; d != nil {
		st.Record = d.SRV + d.DNS // one of them is ""
	}
	if r.Backends != nil {
		st.ResolvedAt = r.At
		if !reflect.DeepEqual(r.Backends, ps.disc.found) {
			log.Info("backends changed", "backends", urls(r.Backends))
			ps.disc.found, changed = r.Backends, true
		}
	}
	st.Backends = len(ps.disc.found)
	cp := *st
	ps.setDiscovery(&cp)
	return changed
}

// watchDiscovery restarts the watcher of the pool's record, if it has one; stop
// stops it for good. l.applyMu must be held, and l started.
func (ps *poolState) watchDiscovery(stop bool) {
	l := ps.l
	if ps.disc.stop != nil {
		ps.disc.stop()
		ps.disc.stop = nil
	}
	ps.disc.watcher++
	d := ps.cfg.Discovery
	if d == nil || stop {
		return
	}
	ctx, cancel := context.WithCancel(l.ctx)
	ps.disc.stop = cancel
	id := ps.disc.watcher
	w := discovery.NewWatcher(*d, func(r discovery.Result) { ps.discovered(id, r) }, ps.log.Named("discovery"))
	l.wg.Go(func() { w.Run(ctx) })
}

// discovered applies a watcher's result: new backends join down until their health
// checks pass, as with an edit of config.json; vanished ones drain, but only once the
// new ones are up (see updateBackends).
func (ps *poolState) discovered(id int, r discovery.Result) {
	ps.l.applyMu.Lock()
	defer ps.l.applyMu.Unlock()
	if id != ps.disc.watcher || !ps.noteDiscovery(r) {
		return
	}
	ps.updateBackends()
}

// awaitUp waits until one of found is up, or for grace at most, or until shutdown.
func (ps *poolState) awaitUp(found []config.Backend, grace time.Duration) {
	l := ps.l
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(grace / 20)
	defer tick.Stop()
	for {
		if ps.anyUp(found) {
			return
		}
		select {
		case <-l.ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// updateBackends makes the backend set match cfg and what discovery found: removed
// backends drain, new ones get health checks. When no backend that stays is up, the
// leaving ones keep serving beside the new ones until one of those is up (or for a
// grace period at most), so that an edit or a record that replaces the set leaves no
// moment without a candidate (DESIGN section 12). l.applyMu must be held.
func (ps *poolState) updateBackends() {
	l := ps.l
	want := ps.backendList()
	ps.bridge++ // a leaving set still kept for an earlier change is decided anew here
	leaving := ps.leaving(want)
	if len(leaving) == 0 || ps.anyUp(want) {
		ps.setBackends(want)
		return
	}
	ps.setBackends(append(want[:len(want):len(want)], leaving...))
	ps.log.Info("backends replaced: the leaving ones serve until a new one is up", "leaving", urls(leaving))
	id, hc := ps.bridge, ps.cfg.HealthCheck
	grace := time.Duration(hc.HealthyThreshold+1)*hc.Interval.D() + hc.Timeout.D()
	l.wg.Go(func() {
		ps.awaitUp(want, grace)
		l.applyMu.Lock()
		defer l.applyMu.Unlock()
		if id == ps.bridge && !ps.gone {
			ps.bridge++
			ps.setBackends(ps.backendList()) // now without the leaving ones
		}
	})
}

// leaving lists the backends of the live set that want does not hold, as they are.
func (ps *poolState) leaving(want []config.Backend) []config.Backend {
	var out []config.Backend
	for _, b := range ps.set.Snapshot().All {
		if !slices.ContainsFunc(want, func(w config.Backend) bool { return sameBackend(w.URL, b.Key) }) {
			out = append(out, config.Backend{URL: b.URL, Weight: b.Weight(), Source: b.Source(), Priority: b.Priority()})
		}
	}
	return out
}

// anyUp reports whether a backend of want is a candidate now.
func (ps *poolState) anyUp(want []config.Backend) bool {
	for _, b := range ps.set.Snapshot().Candidates {
		if slices.ContainsFunc(want, func(w config.Backend) bool { return sameBackend(w.URL, b.Key) }) {
			return true
		}
	}
	return false
}

// sameBackend reports whether url names the backend whose key is key.
func sameBackend(url, key string) bool {
	k, err := config.NormalizeURL(url)
	return err == nil && k == key
}

// setBackends makes the backend set list exactly want: removed backends drain, new
// ones get health checks. l.applyMu must be held.
func (ps *poolState) setBackends(want []config.Backend) {
	for _, b := range ps.set.Update(want) {
		ps.drain(b)
	}
	ps.checker.Watch(ps.set.Snapshot().All)
}

// drain lets b, removed from the pool, finish its in-flight requests, then gives its
// slot back.
func (ps *poolState) drain(b *backend.Backend) {
	l := ps.l
	ps.log.Info("backend removed: draining its in-flight requests", "backend", b.URL, "inflight", b.Inflight())
	grace := l.cfg.LoadBalancer.Timeouts.Shutdown.D()
	l.wg.Go(func() {
		// A backend added again under the same URL shares the slot, so its
		// in-flight count may never fall to zero: wait no longer than a drain.
		ctx, cancel := context.WithTimeout(l.ctx, grace)
		defer cancel()
		backend.Drain(ctx, b)
		l.shared.release(backend.SlotKey(b.Pool, b.Key))
	})
}

// urls lists bs's URLs for the log.
func urls(bs []config.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.URL
	}
	return out
}
