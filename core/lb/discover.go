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

// discoveryState is what the load balancer knows of servers.discovery. Guarded by
// l.applyMu.
type discoveryState struct {
	cfg     *config.Discovery  // the record watched; nil when none
	found   []config.Backend   // the last known set
	stop    context.CancelFunc // stops the watcher
	watcher int                // counts watchers, so a stopped one's late report is ignored
	status  status.Discovery
}

// backendList is cfg's backends: those of config.json, then those found in DNS.
// l.applyMu must be held, or l not yet started.
func (l *LB) backendList(cfg *config.Config) []config.Backend {
	if cfg.Servers.Discovery == nil {
		return cfg.Servers.Backends
	}
	return append(append([]config.Backend(nil), cfg.Servers.Backends...), l.disc.found...)
}

// resolveNow looks cfg's record up once, when it is new: a failed lookup keeps the
// last known set and is reported. l.applyMu must be held, or l not yet started.
func (l *LB) resolveNow(cfg *config.Config) {
	d := cfg.Servers.Discovery
	if d == nil {
		l.disc.cfg, l.disc.found = nil, nil
		l.source.SetDiscovery(nil)
		return
	}
	if reflect.DeepEqual(l.disc.cfg, d) {
		return
	}
	dc := *d
	l.disc.cfg = &dc
	l.noteDiscovery(discovery.Resolve(context.Background(), d))
}

// noteDiscovery records a resolution in the status and the log, and keeps its
// backends unless it failed. What went wrong is logged when it differs from the last
// lookup's: the errors name the DNS server and the cause, without the exchange's
// ephemeral port, so a server that keeps refusing is logged once. l.applyMu must be
// held.
func (l *LB) noteDiscovery(r discovery.Result) (changed bool) {
	log := l.log.Named("discovery")
	st := &l.disc.status
	msg := ""
	if r.Err != nil {
		msg = r.Err.Error()
	}
	switch {
	case r.Backends == nil:
		st.Lookups.Error++
		if st.LastError != msg {
			log.Warn("lookup failed; keeping the last known backends", "error", msg, "backends", len(l.disc.found))
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
	if d := l.disc.cfg; d != nil {
		st.Record = d.SRV + d.DNS // one of them is ""
	}
	if r.Backends != nil {
		st.ResolvedAt = r.At
		if !reflect.DeepEqual(r.Backends, l.disc.found) {
			log.Info("backends changed", "backends", urls(r.Backends))
			l.disc.found, changed = r.Backends, true
		}
	}
	st.Backends = len(l.disc.found)
	cp := *st
	l.source.SetDiscovery(&cp)
	return changed
}

// watchDiscovery restarts the watcher of cfg's record, if it has one. l.applyMu
// must be held, and l started.
func (l *LB) watchDiscovery(cfg *config.Config) {
	if l.disc.stop != nil {
		l.disc.stop()
		l.disc.stop = nil
	}
	l.disc.watcher++
	d := cfg.Servers.Discovery
	if d == nil {
		return
	}
	ctx, cancel := context.WithCancel(l.ctx)
	l.disc.stop = cancel
	id := l.disc.watcher
	w := discovery.NewWatcher(*d, func(r discovery.Result) { l.discovered(id, r) }, l.log.Named("discovery"))
	l.wg.Go(func() { w.Run(ctx) })
}

// discovered applies a watcher's result: new backends join down until their health
// checks pass, as with an edit of config.json; vanished ones drain, but only once the
// new ones are up (see updateBackends).
func (l *LB) discovered(id int, r discovery.Result) {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if id != l.disc.watcher || !l.noteDiscovery(r) {
		return
	}
	l.updateBackends(l.cfg)
}

// awaitUp waits until one of found is up, or for grace at most, or until shutdown.
func (l *LB) awaitUp(found []config.Backend, grace time.Duration) {
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	tick := time.NewTicker(grace / 20)
	defer tick.Stop()
	for {
		if l.anyUp(found) {
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
func (l *LB) updateBackends(cfg *config.Config) {
	want := l.backendList(cfg)
	l.bridge++ // a leaving set still kept for an earlier change is decided anew here
	leaving := l.leaving(want)
	if len(leaving) == 0 || l.anyUp(want) {
		l.setBackends(want, cfg)
		return
	}
	l.setBackends(append(want[:len(want):len(want)], leaving...), cfg)
	l.log.Info("backends replaced: the leaving ones serve until a new one is up", "leaving", urls(leaving))
	id, hc := l.bridge, cfg.HealthCheck
	grace := time.Duration(hc.HealthyThreshold+1)*hc.Interval.D() + hc.Timeout.D()
	l.wg.Go(func() {
		l.awaitUp(want, grace)
		l.applyMu.Lock()
		defer l.applyMu.Unlock()
		if id == l.bridge {
			l.bridge++
			l.setBackends(l.backendList(l.cfg), l.cfg) // now without the leaving ones
		}
	})
}

// leaving lists the backends of the live set that want does not hold, as they are.
func (l *LB) leaving(want []config.Backend) []config.Backend {
	var out []config.Backend
	for _, b := range l.backends.Snapshot().All {
		if !slices.ContainsFunc(want, func(w config.Backend) bool { return sameBackend(w.URL, b.Key) }) {
			out = append(out, config.Backend{URL: b.URL, Weight: b.Weight(), Source: b.Source(), Priority: b.Priority()})
		}
	}
	return out
}

// anyUp reports whether a backend of want is a candidate now.
func (l *LB) anyUp(want []config.Backend) bool {
	for _, b := range l.backends.Snapshot().Candidates {
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
func (l *LB) setBackends(want []config.Backend, cfg *config.Config) {
	for _, b := range l.backends.Update(want) {
		l.log.Info("backend removed: draining its in-flight requests", "backend", b.URL, "inflight", b.Inflight())
		l.wg.Go(func() {
			// A backend added again under the same URL shares the slot, so its
			// in-flight count may never fall to zero: wait no longer than a drain.
			ctx, cancel := context.WithTimeout(l.ctx, cfg.LoadBalancer.Timeouts.Shutdown.D())
			defer cancel()
			backend.Drain(ctx, b)
			l.shared.release(b.Key)
		})
	}
	l.checker.Watch(l.backends.Snapshot().All)
}

// urls lists bs's URLs for the log.
func urls(bs []config.Backend) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.URL
	}
	return out
}
