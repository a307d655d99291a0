//go:build linux || darwin || freebsd || netbsd || openbsd

package lb

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
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/proxy"
	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// DataPlaneMode reports whether this process was started by a core as one of its
// data-plane processes (see RunDataPlane).
func DataPlaneMode() bool { return os.Getenv(planeEnv) != "" }

// RunDataPlane serves as a data-plane process: one event loop on the port the control
// plane names, with the backends' figures and the pool in the shared segment, the
// strategy over a pick channel of its own, and the configuration from the control
// channel on fd 3. It returns the exit code once told to stop, or at once when the
// control plane is gone.
func RunDataPlane() int {
	f := os.NewFile(3, "control")
	nc, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "data-plane process: no control channel on fd 3:", err)
		return 1
	}
	d := &dataPlaneProc{conn: &planeConn{conn: nc}}
	start, err := d.conn.receive()
	if err != nil || start.Kind != msgStart {
		fmt.Fprintln(os.Stderr, "data-plane process: no start message:", err)
		return 1
	}
	if err := d.start(start); err != nil {
		_ = d.conn.send(&planeMsg{Kind: msgFailed, Error: err.Error()})
		return 1
	}
	_ = d.conn.send(&planeMsg{Kind: msgReady, Addr: d.eng.Addr().String()})
	return d.serve()
}

// dataPlaneProc is the state of a data-plane process.
type dataPlaneProc struct {
	conn  *planeConn
	l     *LB // the parts of a load balancer this process runs
	log   hclog.Logger
	seg   *shm.Segment
	slots *planeSlots
	eng   *engine.Engine
	out   *planeOutcomes

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
func (d *dataPlaneProc) start(m *planeMsg) error {
	level, jsonLog := hclog.Info, false
	if m.Log != nil {
		level, jsonLog = hclog.LevelFromString(m.Log.Level), m.Log.JSON
	}
	d.log = hclog.New(&hclog.LoggerOptions{Name: "lb.plane", Level: level, JSONFormat: jsonLog, Output: os.Stderr}).
		With("plane", m.Index, "pid", os.Getpid())
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
	d.slots = &planeSlots{seg: d.seg, ledger: ledger, bykey: map[string]*backend.Slot{}}
	l := &LB{log: d.log, logJSON: jsonLog, backends: backend.NewSharedSet(d.slots), pool: pool.NewShared(poolConfig(cfg), d.seg.Pool(), false)}
	l.pool.Ledger(ledger)
	l.backends.ShareStates(d.seg.Generation(), true)
	d.l = l
	if l.access, err = l.openAccessLog(cfg); err != nil {
		return err
	}
	d.out = newPlaneOutcomes(d.conn, cfg.HealthCheck.Passive.ConsecutiveFailures)
	// Until the plugin's endpoint comes, picks fall back to the built-in one.
	d.attached = strategy.Attach(cfg.LoadBalancer.Strategy, d.log.Named(cfg.LoadBalancer.Strategy), d.seg.Strategy())
	setFailurePolicy(d.attached, cfg)
	l.handler = proxy.New(proxy.Config{
		Pool: l.pool, Backends: l.backends, Picker: d.attached, Settings: l.settings(cfg),
		Outcomes: d.out, Own: (*backend.Answers)(d.seg.Area(d.seg.Slots())), Log: d.log.Named("proxy"),
	})
	d.applyBackends(m.Backends)
	d.usePlugin(m.Plugin)
	d.eng, err = l.startEngine(cfg, m.Addr, 1, d.status)
	if err != nil {
		return fmt.Errorf("data-plane process %d: listening on %s: %w", m.Index, m.Addr, err)
	}
	d.log.Debug("data-plane process serving", "addr", d.eng.Addr().String())
	return nil
}

// serve applies the control plane's messages until told to stop.
func (d *dataPlaneProc) serve() int {
	for {
		m, err := d.conn.receive()
		if err != nil {
			// The control plane is gone: nobody supervises or reports for this
			// process any more.
			d.log.Error("control channel closed; stopping", "error", err)
			return 1
		}
		switch m.Kind {
		case msgConfig:
			if err := d.configure(m); err != nil {
				_ = d.conn.send(&planeMsg{Kind: msgFailed, Error: err.Error()})
				return 1 // replaced by the control plane, not left divergent
			}
		case msgBackends:
			d.applyBackends(m.Backends)
		case msgPlugin:
			d.usePlugin(m.Plugin)
		case msgReopen:
			if err := d.l.access.reopen(); err != nil {
				d.log.Error("reopening the access log; writing on to the previous file", "error", err)
			}
		case msgAnswer:
			d.answered(m.ID, m.Body)
		case msgStop:
			// Drain beside the channel: status requests and the control plane's
			// messages still need reading while requests finish.
			go func() { os.Exit(d.stop(m)) }()
		}
	}
}

// stop drains the process within the grace the control plane gave, and returns the
// exit code.
func (d *dataPlaneProc) stop(m *planeMsg) int {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(m.GraceMS)*time.Millisecond)
	err := d.eng.Shutdown(ctx)
	cancel()
	d.l.handler.Picker().Close()
	d.l.access.close()
	if err != nil {
		d.log.Warn("requests cut off after the drain timeout", "error", err)
		return 1
	}
	return 0
}

// configure applies a new configuration: what the engine read when it started
// (address, timeouts, limits) is the same, or the control plane would have started
// other processes.
func (d *dataPlaneProc) configure(m *planeMsg) error {
	cfg, err := config.Parse(m.Config, m.Path)
	if err != nil {
		return fmt.Errorf("the control plane's configuration: %w", err)
	}
	l := d.l
	if cfg.LoadBalancer.AccessLog != d.cfg.LoadBalancer.AccessLog || cfg.Path != d.cfg.Path {
		access, err := l.openAccessLog(cfg)
		if err != nil {
			return err
		}
		old := l.access
		l.access = access
		time.AfterFunc(cfg.LoadBalancer.Timeouts.Shutdown.D(), old.close)
	}
	l.pool.Resize(poolConfig(cfg))
	d.out.threshold.Store(int64(cfg.HealthCheck.Passive.ConsecutiveFailures))
	l.handler.SetSettings(l.settings(cfg))
	setFailurePolicy(l.handler.Picker(), cfg)
	d.cfg = cfg
	return nil
}

// applyBackends makes the backend set match the control plane's.
func (d *dataPlaneProc) applyBackends(list []planeBackend) {
	moved := d.slots.assign(list)
	cbs := make([]config.Backend, 0, len(list))
	candidate := make(map[string]bool, len(list))
	for _, b := range list {
		if !moved[b.Key] {
			cbs = append(cbs, config.Backend{URL: b.URL, Weight: b.Weight, Priority: b.Priority, Source: b.Source})
		}
		candidate[b.Key] = b.Candidate
	}
	if len(moved) > 0 {
		// A backend the control plane gave another slot (removed, its slot freed,
		// and added again) starts over here too, counting into its new slot.
		d.l.backends.Update(cbs, clientConfig(d.cfg))
		cbs = cbs[:0]
		for _, b := range list {
			cbs = append(cbs, config.Backend{URL: b.URL, Weight: b.Weight, Priority: b.Priority, Source: b.Source})
		}
	}
	d.l.backends.Update(cbs, clientConfig(d.cfg))
	for _, b := range d.l.backends.Snapshot().All {
		b.Mirror(candidate[b.Key]) // what the slot says wins at the next refresh
	}
	d.l.backends.Rebuild()
	d.l.backends.Refresh()
}

// usePlugin picks as the control plane says: over a pick channel to its plugin, or
// with the bundled strategy in this process.
func (d *dataPlaneProc) usePlugin(pp *planePlugin) {
	if pp == nil {
		return
	}
	h := d.l.handler
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
		setFailurePolicy(d.attached, d.cfg)
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

// statusWait bounds the wait for the control plane's status JSON.
const statusWait = 2 * time.Second

// noStatus is answered on the status path when the control plane does not answer.
var noStatus = []byte(`{"error": "the control plane did not answer"}` + "\n")

// status asks the control plane for the status JSON, answered on the status path.
// The question goes out and the answer comes back off the loop, so a slow control
// plane holds up the status requests alone. One question is in flight at a time:
// requests that come meanwhile share its answer, so a flood of them costs the control
// plane one answer per round trip.
func (d *dataPlaneProc) status(answer func([]byte)) {
	d.mu.Lock()
	d.asking = append(d.asking, answer)
	if d.askID != 0 {
		d.mu.Unlock()
		return
	}
	id := d.nextID.Add(1)
	d.askID = id
	d.askTimer = time.AfterFunc(statusWait, func() { d.answered(id, noStatus) })
	d.mu.Unlock()
	go func() {
		if err := d.conn.send(&planeMsg{Kind: msgStatus, ID: id}); err != nil {
			d.answered(id, noStatus)
		}
	}()
}

// answered hands the answer to question id to the status requests waiting for it,
// unless they were answered already.
func (d *dataPlaneProc) answered(id uint64, body []byte) {
	d.mu.Lock()
	if id != d.askID {
		d.mu.Unlock()
		return
	}
	waiting := d.asking
	d.askID, d.asking = 0, nil
	d.askTimer.Stop()
	d.mu.Unlock()
	for _, answer := range waiting {
		answer(body)
	}
}

// planeSlots places a data-plane process's backends in the slots the control plane
// assigned.
type planeSlots struct {
	seg    *shm.Segment
	ledger *shm.Ledger
	mu     sync.Mutex
	bykey  map[string]*backend.Slot
}

// assign records the control plane's slots, and returns the backends whose slot
// changed since the previous assignment.
func (s *planeSlots) assign(list []planeBackend) (moved map[string]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev := s.bykey
	s.bykey = make(map[string]*backend.Slot, len(list))
	for _, b := range list {
		var slot *backend.Slot
		if b.Slot >= 0 && b.Slot < s.seg.Slots() {
			slot = &backend.Slot{Index: b.Slot, Epoch: b.Epoch, Words: s.seg.Backend(b.Slot), Area: s.seg.Area(b.Slot),
				Mine: s.ledger.Inflight(b.Slot)}
			s.bykey[b.Key] = slot
		}
		if old, ok := prev[b.Key]; ok && (slot == nil || old.Index != slot.Index || old.Epoch != slot.Epoch) {
			if moved == nil {
				moved = map[string]bool{}
			}
			moved[b.Key] = true
		}
	}
	return moved
}

// Slot returns the slot the control plane assigned to the backend with key.
func (s *planeSlots) Slot(key string) *backend.Slot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bykey[key]
}

// planeOutcomes is a data-plane process's passive check: failures in a row are
// counted in the shared segment, so the threshold holds across processes; the
// process that sees it crossed asks the control plane to eject the backend.
type planeOutcomes struct {
	conn      *planeConn
	threshold atomic.Int64

	errors chan *planeMsg // failures to tell of, in order, by one goroutine

	mu       sync.Mutex
	reported map[string]errorReport // the last error told of each backend, by key
}

func newPlaneOutcomes(conn *planeConn, threshold int) *planeOutcomes {
	o := &planeOutcomes{conn: conn, errors: make(chan *planeMsg, 256)}
	o.threshold.Store(int64(threshold))
	go func() {
		for m := range o.errors {
			_ = o.conn.send(m)
		}
	}()
	return o
}

// errorReport is a backend's last error told to the control plane, and when.
type errorReport struct {
	err string
	at  time.Time
}

// How often a data-plane process tells the control plane of one backend's failures,
// for its last_error: at most every reportChanged when the error's text changes, and
// every reportEvery while it does not.
const (
	reportChanged = 50 * time.Millisecond
	reportEvery   = time.Second
)

// Observe records one request's result on b. The control plane, which shows each
// backend's last_error, hears of a failure when its text differs from the last one
// told, and once a second while the same one repeats; an ejection always, after the
// failures told before it.
func (o *planeOutcomes) Observe(b *backend.Backend, failed bool, errMsg string) {
	if !failed {
		b.AddSuccess()
		return
	}
	if t := o.threshold.Load(); int64(b.AddFailure("")) == t && t > 0 {
		m := &planeMsg{Kind: msgEject, Key: b.Key, Error: errMsg}
		go func() { o.errors <- m }() // never dropped; behind the failures queued before
		o.report(b.Key, errMsg, true)
		return
	}
	if errMsg != "" && o.report(b.Key, errMsg, false) {
		select {
		case o.errors <- &planeMsg{Kind: msgError, Key: b.Key, Error: errMsg}:
		default: // the control plane is behind: last_error can wait for the next one
		}
	}
}

// report decides whether the control plane is told of errMsg on the backend with
// key now (always when told is true), and records it when so.
func (o *planeOutcomes) report(key, errMsg string, told bool) bool {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	last, ok := o.reported[key]
	since := now.Sub(last.at)
	if !told && ok && (last.err == errMsg || since < reportChanged) && since < reportEvery {
		return false
	}
	if o.reported == nil || len(o.reported) >= sharedSlots { // backends gone since
		o.reported = map[string]errorReport{}
	}
	o.reported[key] = errorReport{err: errMsg, at: now}
	return true
}

// Interface guards
var (
	_ backend.Slots         = (*planeSlots)(nil)
	_ proxy.OutcomeObserver = (*planeOutcomes)(nil)
)
