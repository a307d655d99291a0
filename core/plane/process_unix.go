//go:build linux || darwin || freebsd || netbsd || openbsd

package plane

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/engine"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/plane/setup"
	"github.com/switchyard-lb/switchyard/core/plane/wire"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// processesRun: data-plane processes run on this system.
const processesRun = true

// run is Run: it starts from the control plane's start message, answers whether it
// listens, and serves until told to stop.
func run() int {
	f := os.NewFile(wire.FD, "control")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		fmt.Fprintf(os.Stderr, "data-plane process: no control channel on fd %d: %v\n", wire.FD, err)
		return 1
	}
	d := &process{conn: wire.NewConn(nc)}
	start, err := d.conn.Receive()
	if err != nil || start.Kind != wire.KindStart {
		fmt.Fprintln(os.Stderr, "data-plane process: no start message:", err)
		return 1
	}
	if err := d.start(start); err != nil {
		_ = d.conn.Send(&wire.Message{Kind: wire.KindFailed, Error: err.Error()})
		return 1
	}
	_ = d.conn.Send(&wire.Message{Kind: wire.KindReady, Addr: d.eng.Addr().String()})
	return d.serve()
}

// process is the state of a data-plane process: the parts of a load balancer it
// runs, and what it was told.
type process struct {
	conn    *wire.Conn
	log     hclog.Logger
	logJSON bool // access log lines as JSON, as the control plane writes them
	seg     *shm.Segment
	slots   *slots
	pool    *pool.Pool
	pools   map[string]*planePool // by name; touched by the control channel's reader only
	proxy   *exchange.Proxy
	access  *setup.AccessLog // nil when off
	eng     *engine.Engine
	out     *outcomes

	cfg *config.Config

	// The status question in flight to the control plane (see status).
	mu       sync.Mutex
	askID    uint64         // 0 when none is
	asking   []func([]byte) // the status requests waiting for its answer
	askTimer *time.Timer    // answers them with noStatus after statusWait
	nextID   atomic.Uint64
}

// start builds the process's parts from the control plane's start message and
// listens.
func (d *process) start(m *wire.Message) error {
	level, jsonLog := hclog.Info, false
	if m.Log != nil {
		level, jsonLog = hclog.LevelFromString(m.Log.Level), m.Log.JSON
	}
	d.log = hclog.New(&hclog.LoggerOptions{Name: "lb.plane", Level: level, JSONFormat: jsonLog, Output: os.Stderr}).
		With("plane", m.Index, "pid", os.Getpid())
	d.logJSON = jsonLog
	cfg, err := config.Parse(m.Config, m.Path)
	if err != nil {
		return fmt.Errorf("data-plane process %d: the control plane's configuration: %w", m.Index, err)
	}
	d.cfg = cfg
	if d.seg, err = shm.Open(m.Shm); err != nil {
		return fmt.Errorf("data-plane process %d: %w", m.Index, err)
	}
	if m.Ledger < 0 || m.Ledger >= shm.Ledgers {
		return fmt.Errorf("data-plane process %d: ledger %d out of range", m.Index, m.Ledger)
	}
	ledger := d.seg.Ledger(m.Ledger)
	d.slots = &slots{seg: d.seg, ledger: ledger, bykey: map[string]*backend.Slot{}}
	d.pool = pool.NewShared(setup.PoolConfig(cfg), d.seg.Pool(), false)
	d.pool.Ledger(ledger)
	d.pools = map[string]*planePool{}
	if d.access, err = setup.OpenAccessLog(cfg, d.logJSON); err != nil {
		return err
	}
	d.out = newOutcomes(d.conn, cfg.HealthCheck.Passive.ConsecutiveFailures, d.seg.Slots())
	settings, err := setup.ProxySettings(cfg, d.access)
	if err != nil {
		return err
	}
	d.applyPools(m.Pools)
	d.applyBackends(m.Backends)
	routes, err := routesOf(m, cfg)
	if err != nil {
		return fmt.Errorf("data-plane process %d: %w", m.Index, err)
	}
	d.proxy = exchange.New(exchange.Config{
		Pool: d.pool, Table: setup.Table(routes, m.Gen, d.upstream), Commit: d.seg.Routes(), Settings: settings,
		Outcomes: d.out, Own: (*backend.Answers)(d.seg.Area(d.seg.Slots())), Log: d.log.Named("proxy"),
	})
	d.eng, err = setup.StartEngine(cfg, engine.Config{
		Addr: m.Addr, Loops: 1, Proxy: d.proxy, Status: d.status,
		Log: d.log.Named("engine"),
	})
	if err != nil {
		return fmt.Errorf("data-plane process %d: listening on %s: %w", m.Index, m.Addr, err)
	}
	d.log.Debug("data-plane process serving", "addr", d.eng.Addr().String())
	return nil
}

// serve applies the control plane's messages until told to stop.
func (d *process) serve() int {
	for {
		m, err := d.conn.Receive()
		if err != nil {
			// The control plane is gone: nobody supervises or reports for this
			// process any more.
			d.log.Error("control channel closed; stopping", "error", err)
			return 1
		}
		switch m.Kind {
		case wire.KindConfig:
			if err := d.configure(m); err != nil {
				_ = d.conn.Send(&wire.Message{Kind: wire.KindFailed, Error: err.Error()})
				return 1 // replaced by the control plane, not left divergent
			}
		case wire.KindBackends:
			d.applyPools(m.Pools)
			d.applyBackends(m.Backends)
		case wire.KindPlugin:
			d.applyPools(m.Pools)
		case wire.KindReopen:
			if err := d.access.Reopen(); err != nil {
				d.log.Error("reopening the access log; writing on to the previous file", "error", err)
			}
		case wire.KindAnswer:
			d.answered(m.ID, m.Body)
		case wire.KindStop:
			// Drain beside the channel: status requests and the control plane's
			// messages still need reading while requests finish.
			go func() { os.Exit(d.stop(m)) }()
		}
	}
}

// stop drains the process within the grace the control plane gave, and returns the
// exit code.
func (d *process) stop(m *wire.Message) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(m.GraceMS)*time.Millisecond)
	err := d.eng.Shutdown(ctx)
	cancel()
	for _, u := range d.proxy.Table().Upstreams() { // the pools map is the channel reader's
		u.Picker().Close()
	}
	d.access.Close()
	if err != nil {
		d.log.Warn("requests cut off after the drain timeout", "error", err)
		return 1
	}
	return 0
}

// configure applies a new configuration: what the engine read when it started
// (address, timeouts, limits) is the same, or the control plane would have started
// other processes.
func (d *process) configure(m *wire.Message) error {
	cfg, err := config.Parse(m.Config, m.Path)
	if err != nil {
		return fmt.Errorf("the control plane's configuration: %w", err)
	}
	if cfg.LoadBalancer.AccessLog != d.cfg.LoadBalancer.AccessLog || cfg.Path != d.cfg.Path {
		access, err := setup.OpenAccessLog(cfg, d.logJSON)
		if err != nil {
			return err
		}
		old := d.access
		d.access = access
		time.AfterFunc(cfg.LoadBalancer.Timeouts.Shutdown.D(), old.Close)
	}
	d.pool.Resize(setup.PoolConfig(cfg))
	d.out.threshold.Store(int64(cfg.HealthCheck.Passive.ConsecutiveFailures))
	settings, err := setup.ProxySettings(cfg, d.access)
	if err != nil {
		return err
	}
	d.proxy.SetSettings(settings)
	d.cfg = cfg
	for name, pp := range d.pools {
		if ep, ok := cfg.Pool(name); ok {
			setup.SetFailurePolicy(pp.up.Picker(), ep.Strategy, cfg)
		}
	}
	// The routes take over in every process at once: when the control plane
	// moves the shared generation, once each process has them ready.
	routes, err := routesOf(m, cfg)
	if err != nil {
		return err
	}
	d.proxy.Stage(setup.Table(routes, m.Gen, d.upstream))
	return d.conn.Send(&wire.Message{Kind: wire.KindStaged, Gen: m.Gen})
}

// routesOf is the configuration whose routes make m's table: m.Routes when given,
// else cfg (m's).
func routesOf(m *wire.Message, cfg *config.Config) (*config.Config, error) {
	if len(m.Routes) == 0 {
		return cfg, nil
	}
	routes, err := config.Parse(m.Routes, m.Path)
	if err != nil {
		return nil, fmt.Errorf("the control plane's routes: %w", err)
	}
	return routes, nil
}

// planePool is one pool as a data-plane process runs it.
type planePool struct {
	up       *exchange.Upstream
	set      *backend.Set
	counters *shm.Strategy
	attached *strategy.Plugin // nil with an in-process strategy
}

// upstream is the Upstream of the pool called name, nil when there is none.
func (d *process) upstream(name string) *exchange.Upstream {
	if pp := d.pools[name]; pp != nil {
		return pp.up
	}
	return nil
}

// applyPools makes the process's pools the control plane's: new ones join (picking
// with the built-in strategy until their plugin's endpoint comes), those it no
// longer lists leave (requests routed to them finish), and each picks as the control
// plane says. A nil list changes nothing.
func (d *process) applyPools(list []wire.Pool) {
	if list == nil {
		return
	}
	d.out.setPools(list)
	keep := map[string]bool{}
	for _, wp := range list {
		keep[wp.Name] = true
		pp := d.pools[wp.Name]
		if pp == nil {
			pp = &planePool{counters: d.seg.Strategy()}
			if wp.Counters >= 0 && wp.Counters < d.seg.Slots() {
				pp.counters = d.seg.StrategyIn(wp.Counters)
			}
			pp.set = backend.NewPoolSet(wp.Name, d.slots)
			pp.set.ShareStates(d.seg.Generation(), true)
			name := strategyName(wp)
			pp.attached = strategy.AttachFor(wp.Name, name, d.log.Named(name).With("pool", wp.Name), pp.counters)
			if ep, ok := d.cfg.Pool(wp.Name); ok {
				// From its first pick: a strategy that fails closed refuses even
				// before the process hears its configuration again.
				setup.SetFailurePolicy(pp.attached, ep.Strategy, d.cfg)
			}
			pp.up = exchange.NewUpstream(wp.Name, pp.set, pp.attached, wp.Retries)
			d.pools[wp.Name] = pp
		}
		pp.up.SetRetries(wp.Retries)
		d.usePlugin(wp.Name, pp, wp.Plugin)
	}
	grace := d.cfg.LoadBalancer.Timeouts.Shutdown.D()
	for name, pp := range d.pools {
		if !keep[name] {
			delete(d.pools, name)
			// Requests routed to it before it left still pick with it.
			time.AfterFunc(grace, pp.up.Picker().Close)
		}
	}
}

// strategyName is the name of the strategy wp picks with.
func strategyName(wp wire.Pool) string {
	if wp.Plugin != nil {
		return wp.Plugin.Name
	}
	return "leastconn"
}

// usePlugin makes pool pp pick as the control plane says: over a pick channel to its
// plugin, or with the bundled strategy in this process.
func (d *process) usePlugin(pool string, pp *planePool, p *wire.Plugin) {
	if p == nil {
		return
	}
	u := pp.up
	if p.Local {
		if cur, ok := u.Picker().(*strategy.Local); !ok || cur.Name() != p.Name || pp.attached != nil {
			u.SetPicker(strategy.NewLocalFor(pool, p.Name, strategy.NewBundled(p.Name)))
			if pp.attached != nil {
				pp.attached.Close()
				pp.attached = nil
			}
		}
		return
	}
	if pp.attached == nil || pp.attached.Name() != p.Name {
		old := pp.attached
		pp.attached = strategy.AttachFor(pool, p.Name, d.log.Named(p.Name).With("pool", pool), pp.counters)
		if ep, ok := d.cfg.Pool(pool); ok {
			setup.SetFailurePolicy(pp.attached, ep.Strategy, d.cfg)
		}
		u.SetPicker(pp.attached)
		if old != nil {
			old.Close()
		}
	}
	if p.Endpoint == nil {
		return // the plugin is starting: picks fall back until it runs
	}
	if cur, ok := pp.attached.Endpoint(); ok && cur.Socket == p.Endpoint.Socket {
		return
	}
	if err := pp.attached.Connect(*p.Endpoint); err != nil {
		d.log.Warn("strategy plugin unreachable; picks fall back until it runs", "pool", pool, "error", err)
	}
}
