// Package lb assembles the load balancer from a configuration: the client listener,
// the worker pool, the backend set, the strategy, the data plane and the admin server;
// and applies a new configuration to the running parts.
package lb

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/health"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/proxy"
	"github.com/switchyard-lb/switchyard/core/status"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// Bundled names the strategies built into the core.
var Bundled = strategy.Bundled

// LB is a running load balancer.
type LB struct {
	log      hclog.Logger
	pool     *pool.Pool
	backends *backend.Set
	checker  *health.Checker
	passive  *health.Passive
	handler  *proxy.Handler
	source   *status.Source
	runtime  string  // plugin sockets
	shared   *shared // the figures shared with data-plane processes
	// inProcess runs bundled strategies in the core (Options.InProcessStrategy).
	inProcess bool
	logJSON   bool      // access log lines as JSON (Options.LogJSON)
	overrides Overrides // applied to each configuration read

	applyMu    sync.Mutex // serializes Apply; guards the fields below
	cfg        *config.Config
	generation int
	front      *front // the client listener and its server
	admin      *admin // nil when admin_addr is ""
	// stopScript stops following the strategy's script (see followScript).
	stopScript context.CancelFunc
	access     *accessLog // nil when off
	disc       discoveryState
	bridge     int // counts backend set changes, so a stale removal of leaving backends is dropped (see updateBackends)

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
	l := &LB{log: log, pool: pool.NewShared(poolConfig(cfg), sh.seg.Pool(), true), backends: backend.NewSharedSet(sh), shared: sh,
		cfg: cfg, runtime: runtimeDir, inProcess: opts.InProcessStrategy, logJSON: opts.LogJSON, overrides: opts.Overrides,
		groups: map[planeGroup]struct{}{}, backendsChanged: make(chan struct{}, 1)}
	l.backends.ShareStates(sh.seg.Generation(), false)
	l.backends.OnChange(func() {
		select {
		case l.backendsChanged <- struct{}{}:
		default:
		}
	})
	picker, err := l.startStrategy(context.Background(), cfg)
	if err != nil {
		_ = os.RemoveAll(runtimeDir)
		return nil, err
	}
	setFailurePolicy(picker, cfg)
	l.source = &status.Source{Pool: l.pool, Backends: l.backends, Strategy: func() strategy.Status {
		return l.handler.Picker().Status()
	}}
	l.resolveNow(cfg)
	l.backends.Update(l.backendList(cfg), clientConfig(cfg))
	l.checker = health.NewChecker(checkConfig(cfg), activeSetter{set: l.backends, log: log.Named("health")}, log.Named("health"))
	l.passive = health.NewPassive(passiveConfig(cfg), l.backends, log.Named("health"))
	access, err := l.openAccessLog(cfg)
	if err != nil {
		picker.Close()
		_ = os.RemoveAll(runtimeDir)
		return nil, err
	}
	l.access = access
	l.handler = proxy.New(proxy.Config{
		Pool: l.pool, Backends: l.backends, Picker: picker, Settings: l.settings(cfg), Outcomes: l.passive,
		Status: l.source.ServeFast, Own: sh.own(), Log: log.Named("proxy"),
	})
	l.source.Own, l.source.Control, l.source.Version = l.handler.OwnAnswers(), control{l}, opts.Version
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
	l.front, l.admin = fr, ad
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.wg.Go(func() { l.pool.Run(l.ctx) })
	l.wg.Go(func() { l.source.SampleHistory(l.ctx, l.log.Named("status")) })
	l.wg.Go(l.followBackends)
	l.checker.Start(l.ctx, l.backends.Snapshot().All)
	l.applied(cfg)
	l.restartScriptFollow(cfg)
	l.watchDiscovery(cfg)
	l.log.Info("listening", "addr", fr.addr().String(), "engine", engineOf(cfg), "processes", processesOf(cfg), "admin", l.adminAddr(), "strategy", cfg.LoadBalancer.Strategy,
		"backends", len(l.backends.Snapshot().All), "config", cfg.Path)
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
	fr, ad := l.front, l.admin
	l.applyMu.Unlock()
	err := fr.shutdown(ctx)
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
	l.handler.Picker().Close()
	l.access.close()
	_ = os.RemoveAll(l.runtime)
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

// startStrategy starts the strategy cfg names as a plugin process: a bundled one by
// re-executing the core in plugin mode, another from its plugins entry. If ctx ends
// before the plugin answers, the start is abandoned (see strategy.StartContext).
func (l *LB) startStrategy(ctx context.Context, cfg *config.Config) (strategy.Picker, error) {
	name := cfg.LoadBalancer.Strategy
	if s := strategy.NewBundled(name); l.inProcess && s != nil {
		return strategy.NewLocal(name, s), nil
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
	spec.RuntimeDir, spec.Log, spec.Launched = l.runtime, l.log.Named(name), l.pluginChanged
	spec.Counters = l.shared.seg.Strategy()
	spec.StartTimeout = cfg.LoadBalancer.Timeouts.PluginStart.D()
	return strategy.StartContext(ctx, spec)
}

// setFailurePolicy tells p, if it can fail, what a failed pick gets under cfg
// (plugins.NAME.on_failure).
func setFailurePolicy(p strategy.Picker, cfg *config.Config) {
	if f, ok := p.(interface{ SetRefuse(bool) }); ok {
		f.SetRefuse(cfg.Refuses())
	}
}

func poolConfig(cfg *config.Config) pool.Config {
	tp := cfg.Threadpool
	return pool.Config{
		MinWorkers: tp.MinWorkers, MaxWorkers: tp.MaxWorkers, QueueCapacity: tp.QueueCapacity,
		QueueTimeout: tp.QueueTimeout.D(), IdleTimeout: tp.IdleTimeout.D(),
	}
}

func checkConfig(cfg *config.Config) health.Config {
	hc := cfg.HealthCheck
	return health.Config{
		Path: hc.Path, Interval: hc.Interval.D(), Timeout: hc.Timeout.D(),
		Healthy: hc.HealthyThreshold, Unhealthy: hc.UnhealthyThreshold,
	}
}

func passiveConfig(cfg *config.Config) health.PassiveConfig {
	p := cfg.HealthCheck.Passive
	return health.PassiveConfig{ConsecutiveFailures: p.ConsecutiveFailures, EjectionTime: p.EjectionTime.D()}
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

func clientConfig(cfg *config.Config) backend.ClientConfig {
	t := cfg.LoadBalancer.Timeouts
	return backend.ClientConfig{Connect: t.Connect.D(), ReadIdle: t.ResponseHeader.D(), Idle: t.Idle.D()}
}

// settings are the request path's settings for cfg. l.applyMu must be held, or l
// not yet started.
func (l *LB) settings(cfg *config.Config) proxy.Settings {
	lbc := cfg.LoadBalancer
	s := proxy.Settings{
		StatusPath: lbc.StatusPath, Retries: lbc.Retries, ReuseAlways: lbc.Reuse == config.ReuseAlways, MaxHeaders: lbc.Limits.MaxHeaders,
		ConnectTimeout: lbc.Timeouts.Connect.D(), Idle: lbc.Timeouts.Idle.D(),
	}
	if l.access != nil {
		s.AccessLog = l.access.log
	}
	return s
}

// fasthttpLogger sends fasthttp's own messages to the structured log.
type fasthttpLogger struct{ log hclog.Logger }

// Printf logs one fasthttp message.
func (f fasthttpLogger) Printf(format string, args ...any) {
	f.log.Debug(fmt.Sprintf(format, args...))
}
