// Package lb is the control plane: it assembles the load balancer from a
// configuration (the client listener, the worker pool, the backend set, the strategy,
// the data plane and the admin server), applies a new configuration to the running
// parts, and starts and supervises the data-plane processes, whose own main is
// package plane, over the control channel of package wire.
package lb

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/health"
	"github.com/switchyard-lb/switchyard/core/plane/setup"
	"github.com/switchyard-lb/switchyard/core/plane/wire"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/status"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// Bundled names the strategies built into the core.
var Bundled = strategy.Bundled

// LB is a running load balancer.
type LB struct {
	log    hclog.Logger
	pool   *pool.Pool
	proxy  *exchange.Proxy // what the fronts share: worker pool, routes, settings, outcomes
	source *status.Source
	// pools are the running pools, default first: written under applyMu, read
	// without it.
	poolList atomic.Pointer[[]*poolState]
	runtime  string  // plugin sockets
	shared   *shared // the figures shared with data-plane processes
	// inProcess runs bundled strategies in the core (Options.InProcessStrategy).
	inProcess bool
	logJSON   bool      // access log lines as JSON (Options.LogJSON)
	overrides Overrides // applied to each configuration read

	applyMu    sync.Mutex // serializes Apply; guards the fields below
	cfg        *config.Config
	generation int
	front      *front   // the client listener and its server
	extras     []*extra // the listeners of config.json's listeners
	// acmes are the ACME sources of the listeners that serve (*certs.ACME, to
	// true): plaintext listeners answer their http-01 challenges.
	acmes sync.Map
	admin *admin // nil when admin_addr is ""
	// stopScript stops following the strategies' scripts (see followScript).
	stopScript context.CancelFunc
	access     *setup.AccessLog // nil when off
	// routes is the generation of the routing table in force (shm Routes).
	routes uint64

	sendMu   sync.Mutex // orders the pools' messages to data-plane processes (sendBackends)
	groupsMu sync.Mutex
	groups   map[planeGroup]struct{} // running groups of data-plane processes
	// backendsChanged wakes followBackends; capacity 1.
	backendsChanged chan struct{}

	ctx    context.Context // of background work; done at Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Options are the settings of an LB that do not come from config.json.
type Options struct {
	// Log receives the load balancer's log lines (default: none).
	Log hclog.Logger
	// InProcessStrategy runs bundled strategies inside the core instead of as plugin
	// processes: no isolation from a crash, for comparing what the plugin costs.
	InProcessStrategy bool
	// LogJSON writes access log lines as JSON instead of logfmt.
	LogJSON bool
	// Version is the core's version, for the status.
	Version string
	// Overrides replace addresses of each configuration read.
	Overrides Overrides
}

// New builds a load balancer for cfg, which must have passed Validate, and starts its
// strategy. Start serves; Shutdown stops everything New started.
func New(cfg *config.Config, opts Options) (*LB, error) {
	log := opts.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	runtimeDir, err := strategy.RuntimeDir()
	if err != nil {
		return nil, err
	}
	sh, err := newShared(runtimeDir, log.Named("shared"))
	if err != nil {
		_ = os.RemoveAll(runtimeDir)
		return nil, err
	}
	l := &LB{log: log, pool: pool.NewShared(setup.PoolConfig(cfg), sh.seg.Pool(), true), shared: sh,
		cfg: cfg, runtime: runtimeDir, inProcess: opts.InProcessStrategy, logJSON: opts.LogJSON, overrides: opts.Overrides,
		groups: map[planeGroup]struct{}{}, backendsChanged: make(chan struct{}, 1)}
	l.source = &status.Source{Pool: l.pool, Pools: l.statusPools, Strategy: func() strategy.Status {
		return l.poolsOf()[0].up.Picker().Status()
	}}
	fail := func(err error) (*LB, error) {
		for _, ps := range l.poolsOf() {
			ps.discard()
		}
		_ = os.RemoveAll(runtimeDir)
		return nil, err
	}
	var pools []*poolState
	for _, name := range cfg.PoolNames() {
		ep, _ := cfg.Pool(name)
		ps, err := l.newPool(context.Background(), cfg, ep)
		if err != nil {
			return fail(err)
		}
		pools = append(pools, ps)
		l.publishPools(pools)
	}
	l.source.Backends = pools[0].set
	access, err := setup.OpenAccessLog(cfg, l.logJSON)
	if err != nil {
		return fail(err)
	}
	l.access = access
	settings, err := setup.ProxySettings(cfg, l.access)
	if err != nil {
		access.Close()
		return fail(err)
	}
	l.routes = 1
	sh.seg.Routes().Store(l.routes)
	l.proxy = exchange.New(exchange.Config{
		Pool: l.pool, Table: routeTable(cfg, l.routes, pools), Commit: sh.seg.Routes(), Settings: settings,
		Outcomes: outcomes{l}, Own: sh.own(), Log: log.Named("proxy"),
	})
	l.source.Own, l.source.Control, l.source.Version = l.proxy.OwnAnswers(), control{l}, opts.Version
	warn(log, cfg)
	return l, nil
}

// Start listens on the configured addresses and serves until Shutdown.
func (l *LB) Start() error {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	cfg := l.cfg
	fr, err := l.newFront(cfg, true)
	if err != nil {
		return err
	}
	var ad *admin
	if cfg.LoadBalancer.AdminAddr != "" {
		if ad, err = newAdmin(cfg.LoadBalancer.AdminAddr, l.source, l.log); err != nil {
			_ = fr.shutdown(context.Background())
			return err
		}
	}
	extras, _, err := l.startExtras(nil, cfg, nil)
	if err != nil {
		_ = fr.shutdown(context.Background())
		if ad != nil {
			_ = ad.server.Close()
		}
		return err
	}
	l.front, l.admin, l.extras = fr, ad, extras
	l.showListeners()
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Go(func() { l.pool.Run(l.ctx) })
	l.wg.Go(func() { l.source.SampleHistory(l.ctx, l.log.Named("status")) })
	l.wg.Go(l.followBackends)
	backends := 0
	for _, ps := range l.poolsOf() {
		ps.start()
		backends += len(ps.set.Snapshot().All)
	}
	l.applied(cfg)
	l.restartScriptFollow(cfg)
	l.log.Info("listening", "addr", fr.addr().String(), "engine", engineOf(cfg), "processes", processesOf(cfg), "admin", l.adminAddr(), "strategy", cfg.LoadBalancer.Strategy,
		"pools", len(l.poolsOf()), "routes", len(cfg.Routes), "backends", backends, "config", cfg.Path)
	return nil
}

// Addr is the client listener's address.
func (l *LB) Addr() string {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	return l.front.addr().String()
}

// AdminAddr is the admin listener's address, "" when it is off.
func (l *LB) AdminAddr() string {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	return l.adminAddr()
}

func (l *LB) adminAddr() string {
	if l.admin == nil {
		return ""
	}
	return l.admin.ln.Addr().String()
}

// Config returns the configuration in force.
func (l *LB) Config() *config.Config {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	return l.cfg
}

// Status returns the status JSON's content.
func (l *LB) Status() status.Status { return l.source.Status() }

// Shutdown stops accepting, lets in-flight requests finish until ctx is done, and
// stops the background work. It returns ctx's error if requests were cut off.
func (l *LB) Shutdown(ctx context.Context) error {
	l.applyMu.Lock()
	fr, ad, extras := l.front, l.admin, l.extras
	l.applyMu.Unlock()
	errs := make([]error, len(extras))
	var wg sync.WaitGroup
	for i, x := range extras {
		x.stop()
		wg.Go(func() { errs[i] = x.f.Shutdown(ctx) })
	}
	err := fr.shutdown(ctx)
	wg.Wait()
	if err == nil {
		err = errors.Join(errs...)
	}
	if ad != nil {
		_ = ad.server.Close()
	}
	l.cancel()
	l.wg.Wait()
	l.Close()
	return err
}

// Close stops the strategy and removes its runtime directory: for a load balancer
// that was built but never started, and as the last step of Shutdown. The shared
// memory segment's file goes with the directory; its mapping stays until the process
// exits, for whatever still holds a backend.
func (l *LB) Close() {
	for _, ps := range l.poolsOf() {
		ps.up.Picker().Close()
	}
	l.access.Close()
	_ = os.RemoveAll(l.runtime)
}

// ReopenAccessLog opens the access log's file anew in every process of the load
// balancer, as nginx does on USR1, for log rotation: logrotate renames the file, then
// signals the core, and lines of requests that end from then on go to a new file at
// the configured path; those of requests that ended before go to the renamed file,
// whole (see proxy.AccessLog.SetWriter). It returns this process's error; a data-plane
// process that cannot open the file logs why and writes on to the renamed one.
func (l *LB) ReopenAccessLog() error {
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	err := l.access.Reopen()
	if l.access != nil {
		l.eachGroup(func(g planeGroup) { g.send(&wire.Message{Kind: wire.KindReopen}) })
	}
	return err
}

// restartScriptFollow follows cfg's strategy script instead of the previous one.
// l.applyMu must be held.
func (l *LB) restartScriptFollow(cfg *config.Config) {
	if l.stopScript != nil {
		l.stopScript()
	}
	var ctx context.Context
	ctx, l.stopScript = context.WithCancel(l.ctx)
	l.followScript(ctx, cfg)
}

// applied records cfg as the configuration in force. l.applyMu must be held.
func (l *LB) applied(cfg *config.Config) {
	l.cfg = cfg
	l.generation++
	l.source.SetConfig(status.Config{Path: cfg.Path, Generation: l.generation, LoadedAt: time.Now().UTC()})
}

// startStrategy starts strategy name for pool ps under cfg as a plugin process: a
// bundled one by re-executing the core in plugin mode, another from its plugins
// entry. If ctx ends before the plugin answers, the start is abandoned (see
// strategy.StartContext).
func (l *LB) startStrategy(ctx context.Context, cfg *config.Config, ps *poolState, name string) (strategy.Picker, error) {
	if s := strategy.NewBundled(name); l.inProcess && s != nil {
		return strategy.NewLocalFor(ps.name, name, s), nil
	}
	var spec strategy.Spec
	if p, ok := cfg.Plugins[name]; ok && p.Script != "" {
		var err error
		if spec, err = strategy.ScriptSpec(name, cfg.PluginScript(name)); err != nil {
			return nil, err
		}
		spec.Options = p.Options
	} else if ok {
		command, args := cfg.PluginCommand(name), p.Args
		spec = strategy.Spec{Name: name, Options: p.Options, Command: func(ctx context.Context) *exec.Cmd {
			return exec.CommandContext(ctx, command, args...)
		}}
	} else {
		var err error
		if spec, err = strategy.BundledSpec(name); err != nil {
			return nil, err
		}
	}
	spec.RuntimeDir, spec.Log, spec.Launched = l.runtime, ps.log.Named(name), l.pluginChanged
	spec.Counters, spec.Pool = ps.counters, ps.name
	spec.StartTimeout = cfg.LoadBalancer.Timeouts.PluginStart.D()
	return strategy.StartContext(ctx, spec)
}

// activeSetter applies active checks' verdicts to the backend set, one log line per
// change.
type activeSetter struct {
	set *backend.Set
	log hclog.Logger
}

// SetActive marks b up or down and publishes the new candidates. A failed check
// that changes nothing is logged once, the first since the backend's last change, so
// that a backend that never comes up says why.
func (a activeSetter) SetActive(b *backend.Backend, up bool, reason, lastErr string) {
	if reason == "" {
		if b.NoteError(lastErr) {
			h := b.Health()
			a.log.Warn("backend health check failing", "backend", b.URL, "state", h.State, "reason", h.Reason, "error", lastErr)
		}
		return
	}
	h, changed := b.SetUp(up, reason, lastErr)
	if !changed {
		return
	}
	a.set.Rebuild()
	if lastErr != "" {
		health.LogChange(a.log, b, h, "error", lastErr)
	} else {
		health.LogChange(a.log, b, h)
	}
}

// warn logs what cfg's file says that is read otherwise (config.Config.Warnings).
func warn(log hclog.Logger, cfg *config.Config) {
	for _, w := range cfg.Warnings {
		log.Warn(w, "file", cfg.Path)
	}
}
