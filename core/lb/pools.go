package lb

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/health"
	"github.com/switchyard-lb/switchyard/core/plane/setup"
	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/core/status"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// poolState is one pool as the control plane runs it (DESIGN section 4.1): its
// backend set, strategy, health checks and discovery, and the Upstream the fronts
// route its requests to. Its fields are guarded by l.applyMu unless said otherwise.
type poolState struct {
	l    *LB
	name string
	log  hclog.Logger
	cfg  config.EffectivePool

	set     *backend.Set
	up      *exchange.Upstream // read by the fronts: its picker is swapped atomically
	checker *health.Checker
	passive *health.Passive
	// counters are where the pool's strategy counts its fallbacks, in every
	// process; slot is the shared segment's slot that holds them (-1: default's).
	counters *shm.Strategy
	slot     int
	disc     discoveryState
	discMu   sync.Mutex // guards discSt, read by the status
	discSt   *status.Discovery
	// threshold is cfg's passive threshold, for the data-plane processes' messages,
	// which are made without l.applyMu.
	threshold atomic.Int64
	bridge    int  // counts backend set changes (see updateBackends)
	gone      bool // removed from the configuration: draining
}

// strategySlotKey is the shared slot key of pool's strategy counters: no backend's
// key (scheme://host:port) looks like it.
func strategySlotKey(pool string) string { return "strategy of " + pool }

// newPool builds pool ep with its backend set and its strategy started; health
// checks and discovery start with startPool. ctx bounds the strategy's start.
func (l *LB) newPool(ctx context.Context, cfg *config.Config, ep config.EffectivePool) (*poolState, error) {
	ps := &poolState{l: l, name: ep.Name, cfg: ep, log: l.log, slot: -1}
	if ep.Name != config.DefaultPool {
		ps.log = l.log.With("pool", ep.Name) // default's lines read as they did before pools
	}
	ps.counters = l.shared.seg.Strategy()
	if ep.Name != config.DefaultPool {
		slot := l.shared.Slot(strategySlotKey(ep.Name))
		if slot == nil {
			return nil, fmt.Errorf("pools.%s: no shared memory slot left for its strategy's counters", ep.Name)
		}
		ps.slot = slot.Index
		ps.counters = l.shared.seg.StrategyIn(slot.Index)
		ps.counters.Reset()
	}
	picker, err := l.startStrategy(ctx, cfg, ps, ep.Strategy)
	if err != nil {
		ps.release()
		return nil, err
	}
	setup.SetFailurePolicy(picker, ep.Strategy, cfg)
	ps.set = backend.NewPoolSet(ep.Name, l.shared)
	ps.set.ShareStates(l.shared.seg.Generation(), false)
	ps.set.OnChange(func() {
		select {
		case l.backendsChanged <- struct{}{}:
		default:
		}
	})
	ps.up = exchange.NewUpstream(ep.Name, ps.set, picker, ep.Retries)
	ps.threshold.Store(int64(ep.HealthCheck.Passive.ConsecutiveFailures))
	ps.resolveNow()
	ps.set.Update(ps.backendList())
	ps.checker = health.NewChecker(checkConfig(cfg, ep), activeSetter{set: ps.set, log: ps.log.Named("health")}, ps.log.Named("health"))
	ps.passive = health.NewPassive(passiveConfig(ep), ps.set, ps.log.Named("health"))
	return ps, nil
}

// start starts the pool's health checks and discovery. l.applyMu must be held, and
// l started.
func (ps *poolState) start() {
	ps.checker.Start(ps.l.ctx, ps.set.Snapshot().All)
	ps.watchDiscovery(false)
}

// discard undoes newPool for a pool that never served: its strategy stops and its
// backends' slots and its strategy's slot are given back.
func (ps *poolState) discard() {
	ps.up.Picker().Close()
	for _, b := range ps.set.Update(nil) {
		ps.l.shared.release(backend.SlotKey(b.Pool, b.Key))
	}
	ps.release()
}

// release gives back the pool's strategy slot.
func (ps *poolState) release() {
	if ps.slot >= 0 {
		ps.l.shared.release(strategySlotKey(ps.name))
		ps.slot = -1
	}
}

// setDiscovery records the pool's discovery for the status.
func (ps *poolState) setDiscovery(d *status.Discovery) {
	ps.discMu.Lock()
	ps.discSt = d
	ps.discMu.Unlock()
	if ps.name == config.DefaultPool {
		ps.l.source.SetDiscovery(d)
	}
}

// discovery is the pool's discovery for the status, nil when it has none.
func (ps *poolState) discovery() *status.Discovery {
	ps.discMu.Lock()
	defer ps.discMu.Unlock()
	return ps.discSt
}

// apply changes the pool to ep under cfg: picker (already started when the strategy
// changed), retries, health checks, discovery and backends. l.applyMu must be held.
func (ps *poolState) apply(cfg *config.Config, ep config.EffectivePool, picker strategy.Picker) {
	prev := ps.cfg
	ps.cfg = ep
	ps.up.SetRetries(ep.Retries)
	ps.threshold.Store(int64(ep.HealthCheck.Passive.ConsecutiveFailures))
	discoveryChanged := !reflect.DeepEqual(prev.Discovery, ep.Discovery)
	if discoveryChanged {
		ps.resolveNow()
	}
	ps.updateBackends()
	ps.checker.SetConfig(checkConfig(cfg, ep))
	ps.passive.SetConfig(passiveConfig(ep))
	if picker != nil {
		setup.SetFailurePolicy(picker, ep.Strategy, cfg)
		old := ps.up.Picker()
		ps.up.SetPicker(picker)
		old.Close()
	} else {
		setup.SetFailurePolicy(ps.up.Picker(), ep.Strategy, cfg)
	}
	if discoveryChanged {
		ps.watchDiscovery(false)
	}
}

// remove takes the pool out: no route sends it requests any more (the table that
// named it is replaced), its checks and discovery stop; requests routed to it before
// finish there, those still waiting for a worker (queue_timeout at most) included,
// then its backends drain and leave, and its strategy stops. l.applyMu must be held.
func (ps *poolState) remove() {
	l := ps.l
	ps.gone = true
	ps.bridge++
	ps.watchDiscovery(true)
	ps.checker.Watch(nil)
	queued := l.cfg.Threadpool.QueueTimeout.D() + time.Second
	grace := l.cfg.LoadBalancer.Timeouts.Shutdown.D()
	picker := ps.up.Picker()
	ps.log.Info("pool removed: the requests routed to it finish, then its backends leave", "pool", ps.name)
	l.wg.Go(func() {
		select {
		case <-l.ctx.Done():
		case <-time.After(queued):
		}
		removed := ps.set.Update(nil)
		ctx, cancel := context.WithTimeout(l.ctx, grace)
		defer cancel()
		for _, b := range removed {
			backend.Drain(ctx, b)
			l.shared.release(backend.SlotKey(b.Pool, b.Key))
		}
		picker.Close()
		l.applyMu.Lock()
		ps.release()
		l.applyMu.Unlock()
	})
}

// poolsOf is the pools of the configuration in force, default first.
func (l *LB) poolsOf() []*poolState {
	if p := l.poolList.Load(); p != nil {
		return *p
	}
	return nil
}

// publishPools makes pools the ones status, runtime control and the data-plane
// processes see. l.applyMu must be held.
func (l *LB) publishPools(pools []*poolState) {
	l.poolList.Store(&pools)
}

// poolNamed is the running pool called name, nil when there is none.
func (l *LB) poolNamed(name string) *poolState {
	for _, ps := range l.poolsOf() {
		if ps.name == name {
			return ps
		}
	}
	return nil
}

// statusPools lists the pools for the status.
func (l *LB) statusPools() []status.PoolSource {
	pools := l.poolsOf()
	out := make([]status.PoolSource, len(pools))
	for i, ps := range pools {
		out[i] = status.PoolSource{Name: ps.name, Backends: ps.set, Strategy: ps.up.Picker().Status, Discovery: ps.discovery}
	}
	return out
}

// outcomes hands each request's result to the passive checks of its backend's pool.
type outcomes struct{ l *LB }

// Observe implements exchange.OutcomeObserver.
func (o outcomes) Observe(b *backend.Backend, failed bool, errMsg string) {
	if ps := o.l.poolNamed(b.Pool); ps != nil {
		ps.passive.Observe(b, failed, errMsg)
	}
}

// upstream is the Upstream of the running pool called name, nil when there is none.
func (l *LB) upstream(name string) *exchange.Upstream {
	if ps := l.poolNamed(name); ps != nil {
		return ps.up
	}
	return nil
}

// routeTable builds the routing table of cfg over pools, of generation gen.
func routeTable(cfg *config.Config, gen uint64, pools []*poolState) *exchange.Table {
	return setup.Table(cfg, gen, func(name string) *exchange.Upstream {
		for _, ps := range pools {
			if ps.name == name {
				return ps.up
			}
		}
		return nil
	})
}

func checkConfig(cfg *config.Config, ep config.EffectivePool) health.Config {
	hc := ep.HealthCheck
	backendTLS, tlsKey, _ := config.BackendTLS(cfg, ep) // it was read when cfg was validated
	return health.Config{
		Path: hc.Path, GRPC: hc.GRPC, Interval: hc.Interval.D(), Timeout: hc.Timeout.D(),
		Healthy: hc.HealthyThreshold, Unhealthy: hc.UnhealthyThreshold, TLS: backendTLS, TLSKey: tlsKey,
	}
}

func passiveConfig(ep config.EffectivePool) health.PassiveConfig {
	p := ep.HealthCheck.Passive
	return health.PassiveConfig{ConsecutiveFailures: p.ConsecutiveFailures, EjectionTime: p.EjectionTime.D()}
}

// strategyOf is the strategy a pool of cfg runs, with what decides whether it must
// be started anew: its name, and its plugin entry's command, script, arguments and
// options.
func strategyKey(cfg *config.Config, name string) string {
	p := cfg.Plugins[name]
	return fmt.Sprintf("%s\x00%s\x00%s\x00%q\x00%s", name, p.Command, p.Script, p.Args, p.Options)
}
