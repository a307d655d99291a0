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
	conn     *wire.Conn
	log      hclog.Logger
	logJSON  bool // access log lines as JSON, as the control plane writes them
	seg      *shm.Segment
	slots    *slots
	pool     *pool.Pool
	backends *backend.Set
	proxy    *exchange.Proxy
	access   *setup.AccessLog // nil when off
	eng      *engine.Engine
	out      *outcomes

	cfg      *config.Config
	attached *strategy.Plugin // nil with an in-process strategy

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
	d.backends = backend.NewSharedSet(d.slots)
	d.pool = pool.NewShared(setup.PoolConfig(cfg), d.seg.Pool(), false)
	d.pool.Ledger(ledger)
	d.backends.ShareStates(d.seg.Generation(), true)
	if d.access, err = setup.OpenAccessLog(cfg, d.logJSON); err != nil {
		return err
	}
	d.out = newOutcomes(d.conn, cfg.HealthCheck.Passive.ConsecutiveFailures, d.seg.Slots())
	// Until the plugin's endpoint comes, picks fall back to the built-in one.
	d.attached = strategy.Attach(cfg.LoadBalancer.Strategy, d.log.Named(cfg.LoadBalancer.Strategy), d.seg.Strategy())
	setup.SetFailurePolicy(d.attached, cfg)
	settings, err := setup.ProxySettings(cfg, d.access)
	if err != nil {
		return err
	}
	d.proxy = exchange.New(exchange.Config{
		Pool: d.pool, Backends: d.backends, Picker: d.attached, Settings: settings,
		Outcomes: d.out, Own: (*backend.Answers)(d.seg.Area(d.seg.Slots())), Log: d.log.Named("proxy"),
	})
	d.applyBackends(m.Backends)
	d.usePlugin(m.Plugin)
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
			d.applyBackends(m.Backends)
		case wire.KindPlugin:
			d.usePlugin(m.Plugin)
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
	d.proxy.Picker().Close()
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
	setup.SetFailurePolicy(d.proxy.Picker(), cfg)
	d.cfg = cfg
	return nil
}

// usePlugin picks as the control plane says: over a pick channel to its plugin, or
// with the bundled strategy in this process.
func (d *process) usePlugin(pp *wire.Plugin) {
	if pp == nil {
		return
	}
	h := d.proxy
	if pp.Local {
		if cur, ok := h.Picker().(*strategy.Local); !ok || cur.Name() != pp.Name || d.attached != nil {
			h.SetPicker(strategy.NewLocal(pp.Name, strategy.NewBundled(pp.Name)))
			if d.attached != nil {
				d.attached.Close()
				d.attached = nil
			}
		}
		return
	}
	if d.attached == nil || d.attached.Name() != pp.Name {
		old := d.attached
		d.attached = strategy.Attach(pp.Name, d.log.Named(pp.Name), d.seg.Strategy())
		setup.SetFailurePolicy(d.attached, d.cfg)
		h.SetPicker(d.attached)
		if old != nil {
			old.Close()
		}
	}
	if pp.Endpoint == nil {
		return // the plugin is starting: picks fall back until it runs
	}
	if cur, ok := d.attached.Endpoint(); ok && cur.Socket == pp.Endpoint.Socket {
		return
	}
	if err := d.attached.Connect(*pp.Endpoint); err != nil {
		d.log.Warn("strategy plugin unreachable; picks fall back until it runs", "error", err)
	}
}
