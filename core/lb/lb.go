// Package lb assembles the load balancer from a configuration: the client listener,
// the worker pool, the backend set, the strategy, the data plane and the admin server;
// and applies a new configuration to the running parts.
package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

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
	server   *fasthttp.Server
	ln       net.Listener
	admin    *http.Server
	adminLn  net.Listener
	runtime  string // plugin sockets

	mu         sync.Mutex // guards cfg and generation
	cfg        *config.Config
	generation int

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds a load balancer for cfg, which must have passed Validate, and starts its
// strategy. Start serves; Shutdown stops everything New started.
func New(cfg *config.Config, log hclog.Logger) (*LB, error) {
	runtimeDir, err := strategy.RuntimeDir()
	if err != nil {
		return nil, err
	}
	l := &LB{log: log, pool: pool.New(poolConfig(cfg)), backends: backend.NewSet(), cfg: cfg, runtime: runtimeDir}
	picker, err := l.startStrategy(cfg)
	if err != nil {
		_ = os.RemoveAll(runtimeDir)
		return nil, err
	}
	l.backends.Update(cfg.Servers.Backends, clientConfig(cfg))
	l.checker = health.NewChecker(checkConfig(cfg), activeSetter{set: l.backends, log: log.Named("health")}, log.Named("health"))
	l.passive = health.NewPassive(passiveConfig(cfg), l.backends, log.Named("health"))
	l.source = &status.Source{Pool: l.pool, Backends: l.backends, Strategy: func() strategy.Status {
		return l.handler.Picker().Status()
	}}
	l.handler = proxy.New(proxy.Config{
		Pool: l.pool, Backends: l.backends, Picker: picker, Settings: settings(cfg), Outcomes: l.passive,
		Status: l.source.ServeFast, Log: log.Named("proxy"),
	})
	lbc := cfg.LoadBalancer
	l.server = &fasthttp.Server{
		Handler:      l.handler.ServeHTTP,
		ErrorHandler: proxy.ServerError,
		// Headers are read within read_header; bodies and writes time out only when
		// idle (see proxy.Listener); keep-alive connections close after idle.
		ReadTimeout:                  lbc.Timeouts.ReadHeader.D(),
		IdleTimeout:                  lbc.Timeouts.Idle.D(),
		ReadBufferSize:               lbc.Limits.MaxHeaderBytes,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{log.Named("http")},
	}
	return l, nil
}

// Start listens on the configured addresses and serves until Shutdown.
func (l *LB) Start() error {
	cfg := l.cfg
	addr := net.JoinHostPort(cfg.LoadBalancer.Host, strconv.Itoa(int(cfg.LoadBalancer.Port)))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for clients: %w", err)
	}
	l.ln = ln
	if a := cfg.LoadBalancer.AdminAddr; a != "" {
		if l.adminLn, err = net.Listen("tcp", a); err != nil {
			ln.Close()
			return fmt.Errorf("listening on admin_addr: %w", err)
		}
		l.admin = &http.Server{Handler: status.AdminHandler(l.source), ReadHeaderTimeout: 10 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	l.wg.Go(func() { l.pool.Run(ctx) })
	l.wg.Go(func() { l.checker.Run(ctx, l.backends.Snapshot().All) })
	l.setApplied(cfg)
	wrapped := &proxy.Listener{Listener: ln, Idle: cfg.LoadBalancer.Timeouts.BodyIdle.D()}
	l.wg.Go(func() {
		if err := l.server.Serve(wrapped); err != nil {
			l.log.Error("client listener stopped", "error", err)
		}
	})
	if l.admin != nil {
		l.wg.Go(func() {
			if err := l.admin.Serve(l.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				l.log.Error("admin listener stopped", "error", err)
			}
		})
	}
	l.log.Info("listening", "addr", ln.Addr().String(), "admin", l.AdminAddr(), "strategy", cfg.LoadBalancer.Strategy,
		"backends", len(cfg.Servers.Backends), "config", cfg.Path)
	return nil
}

// Addr is the client listener's address.
func (l *LB) Addr() string { return l.ln.Addr().String() }

// AdminAddr is the admin listener's address, "" when it is off.
func (l *LB) AdminAddr() string {
	if l.adminLn == nil {
		return ""
	}
	return l.adminLn.Addr().String()
}

// Status returns the status JSON's content.
func (l *LB) Status() status.Status { return l.source.Status() }

// Shutdown stops accepting, lets in-flight requests finish until ctx is done, and
// stops the background work. It returns ctx's error if requests were cut off.
func (l *LB) Shutdown(ctx context.Context) error {
	err := l.server.ShutdownWithContext(ctx)
	if l.admin != nil {
		_ = l.admin.Close()
	}
	l.cancel()
	l.wg.Wait()
	l.Close()
	return err
}

// Close stops the strategy and removes its runtime directory: for a load balancer
// that was built but never started, and as the last step of Shutdown.
func (l *LB) Close() {
	l.handler.Picker().Close()
	_ = os.RemoveAll(l.runtime)
}

// SwitchStrategy starts the strategy cfg names and, once it answers, makes it pick
// for new requests and stops the one before. If the new strategy does not start,
// the old one keeps picking and the error is returned.
func (l *LB) SwitchStrategy(cfg *config.Config) error {
	next, err := l.startStrategy(cfg)
	if err != nil {
		return err
	}
	prev := l.handler.Picker()
	l.handler.SetPicker(next)
	// Picks already sent to prev fall back to the built-in pick when it stops.
	prev.Close()
	l.log.Info("strategy switched", "from", prev.Name(), "to", next.Name(), "pid", next.Status().PID)
	return nil
}

// setApplied records cfg as the configuration in force.
func (l *LB) setApplied(cfg *config.Config) {
	l.mu.Lock()
	l.cfg = cfg
	l.generation++
	gen := l.generation
	l.mu.Unlock()
	l.source.SetConfig(status.Config{Path: cfg.Path, Generation: gen, LoadedAt: time.Now().UTC()})
}

// startStrategy starts the strategy cfg names as a plugin process: a bundled one by
// re-executing the core in plugin mode, another from its plugins entry.
func (l *LB) startStrategy(cfg *config.Config) (strategy.Picker, error) {
	name := cfg.LoadBalancer.Strategy
	var spec strategy.Spec
	if p, ok := cfg.Plugins[name]; ok {
		command, args := cfg.PluginCommand(name), p.Args
		spec = strategy.Spec{Name: name, Options: p.Options, Command: func() *exec.Cmd { return exec.Command(command, args...) }}
	} else {
		var err error
		if spec, err = strategy.BundledSpec(name); err != nil {
			return nil, err
		}
	}
	spec.RuntimeDir, spec.Log = l.runtime, l.log.Named(name)
	return strategy.Start(spec)
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

// SetActive marks b up or down and publishes the new candidates.
func (a activeSetter) SetActive(b *backend.Backend, up bool, reason, lastErr string) {
	if !b.SetUp(up, reason, lastErr) {
		return
	}
	a.set.Rebuild()
	if up {
		a.log.Info("backend up", "backend", b.URL, "reason", reason)
	} else {
		a.log.Warn("backend down", "backend", b.URL, "reason", reason, "error", lastErr)
	}
}

func clientConfig(cfg *config.Config) backend.ClientConfig {
	t := cfg.LoadBalancer.Timeouts
	return backend.ClientConfig{Connect: t.Connect.D(), ReadIdle: t.ResponseHeader.D(), Idle: t.Idle.D()}
}

func settings(cfg *config.Config) proxy.Settings {
	lbc := cfg.LoadBalancer
	return proxy.Settings{
		StatusPath: lbc.StatusPath, Retries: lbc.Retries, MaxHeaders: lbc.Limits.MaxHeaders,
		ConnectTimeout: lbc.Timeouts.Connect.D(), Idle: lbc.Timeouts.Idle.D(),
	}
}

// fasthttpLogger sends fasthttp's own messages to the structured log.
type fasthttpLogger struct{ log hclog.Logger }

// Printf logs one fasthttp message.
func (f fasthttpLogger) Printf(format string, args ...any) {
	f.log.Debug(fmt.Sprintf(format, args...))
}
