//go:build linux || darwin || freebsd || netbsd || openbsd

package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/plane/wire"
	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// planeStartTimeout bounds a data-plane process's start, up to its first listening
// socket.
const planeStartTimeout = 15 * time.Second

// processesOf is the number of data-plane processes that serve cfg: 1 for the
// fasthttp engine; else load_balancer.processes, whose default (0) is one per CPU this
// process may use on Linux (GOMAXPROCS: a container's CPU limit, or the GOMAXPROCS
// variable, not the host's CPUs), where the kernel spreads connections over the
// processes sharing a port, and 1 elsewhere.
func processesOf(cfg *config.Config) int {
	if engineOf(cfg) != config.EngineEventLoop || !shm.Shared {
		return 1 // no shared memory between processes here: see shm.Shared
	}
	if n := cfg.LoadBalancer.Processes; n > 0 {
		return n
	}
	if runtime.GOOS == "linux" {
		return runtime.GOMAXPROCS(0)
	}
	return 1
}

// planes is a group of data-plane processes serving one front: each is the core's
// executable re-executed with one event loop, bound to the shared port with
// SO_REUSEPORT, counting into the shared memory segment. The group supervises them
// as the core supervises plugins: one that dies is started again.
type planes struct {
	l    *LB
	addr net.Addr
	self string
	log  hclog.Logger

	mu  sync.Mutex
	cfg *config.Config // what a process started now gets
	// routes is the configuration whose routing table is in force, of generation
	// gen: a process started while an edit is on its way routes by it until the
	// edit's table is committed.
	routes   *config.Config
	gen      uint64
	procs    []*planeProc
	stopping bool
	wg       sync.WaitGroup // supervisors
}

// planeProc is one running data-plane process.
type planeProc struct {
	proc   *os.Process
	index  int
	ledger int // its ledger in the shared segment
	pid    int
	conn   *wire.Conn
	ready  chan *wire.Message // its wire.KindReady or wire.KindFailed
	staged chan uint64        // the generations of routes it has ready (wire.KindStaged)
	ready1 atomic.Uint64      // the latest of them
	exited chan struct{}      // closed once it has exited
	state  *os.ProcessState
}

// startPlanes starts n data-plane processes serving cfg on addr and returns once all
// listen, or with the first one's error (the others are stopped).
func (l *LB) startPlanes(cfg *config.Config, addr string, n int) (*planes, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("starting data-plane processes: finding the core's executable: %w", err)
	}
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, err
	}
	routes := l.cfg
	if routes == nil {
		routes = cfg
	}
	g := &planes{l: l, addr: tcp, self: self, log: l.log.Named("plane"), cfg: cfg, routes: routes, gen: l.routes}
	for i := range n {
		p, err := g.spawn(i)
		if err != nil {
			g.mu.Lock()
			g.stopping = true
			g.mu.Unlock()
			for _, p := range g.procs {
				p.kill()
			}
			return nil, err
		}
		g.procs = append(g.procs, p)
	}
	for i, p := range g.procs {
		g.wg.Go(func() { g.supervise(i, p) })
	}
	l.groupsMu.Lock()
	l.groups[g] = struct{}{}
	l.groupsMu.Unlock()
	g.catchUp(g.procs...) // what changed while they started
	g.log.Info("data-plane processes serving", "addr", tcp.String(), "processes", n)
	return g, nil
}

// Addr is where clients connect.
func (g *planes) Addr() net.Addr { return g.addr }

// spawn starts data-plane process i and waits until it listens.
func (g *planes) spawn(i int) (*planeProc, error) {
	ledger, err := g.l.shared.takeLedger()
	if err != nil {
		return nil, fmt.Errorf("starting data-plane process %d: %w", i, err)
	}
	parentEnd, childEnd, err := socketPair()
	if err != nil {
		g.l.shared.settle(ledger)
		return nil, fmt.Errorf("starting data-plane process %d: %w", i, err)
	}
	nc, err := net.FileConn(parentEnd)
	_ = parentEnd.Close()
	if err != nil {
		_ = childEnd.Close()
		g.l.shared.settle(ledger)
		return nil, fmt.Errorf("starting data-plane process %d: %w", i, err)
	}
	cmd := exec.Command(g.self)
	cmd.Env = append(os.Environ(), wire.Env+"="+strconv.Itoa(i), "GOMAXPROCS=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{childEnd} // its fd 3, wire.FD
	cmd.SysProcAttr = strategy.ChildProcAttr()
	strategy.Spawn(func() { err = cmd.Start() })
	_ = childEnd.Close()
	if err != nil {
		_ = nc.Close()
		g.l.shared.settle(ledger)
		return nil, fmt.Errorf("starting data-plane process %d: %w", i, err)
	}
	p := &planeProc{proc: cmd.Process, index: i, ledger: ledger, pid: cmd.Process.Pid, conn: wire.NewConn(nc), ready: make(chan *wire.Message, 1), staged: make(chan uint64, 16), exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		_ = nc.Close()
		// Requests it had in flight or queued will never end: give them back.
		if inflight, busy := g.l.shared.settle(ledger); inflight != 0 || busy != 0 {
			g.log.Warn("data-plane process exited with requests in flight; their counts are given back",
				"plane", i, "pid", p.pid, "inflight", inflight, "busy_workers", busy)
		}
		close(p.exited)
	}()
	go g.read(p)
	start, err := g.startMsg(i)
	if start != nil {
		start.Ledger = ledger
	}
	if err == nil {
		err = p.conn.Send(start)
	}
	if err != nil {
		p.kill()
		return nil, fmt.Errorf("starting data-plane process %d: %w", i, err)
	}
	t := time.NewTimer(planeStartTimeout)
	defer t.Stop()
	select {
	case m := <-p.ready:
		if m.Kind == wire.KindFailed {
			p.kill()
			return nil, errors.New(m.Error)
		}
	case <-p.exited:
		return nil, fmt.Errorf("data-plane process %d exited while starting (%s)", i, p.state)
	case <-t.C:
		p.kill()
		return nil, fmt.Errorf("data-plane process %d did not start within %s", i, planeStartTimeout)
	}
	return p, nil
}

// startMsg is what process i starts from: the configuration in force, the backends
// and the strategy.
func (g *planes) startMsg(i int) (*wire.Message, error) {
	g.mu.Lock()
	cfg, routes, gen := g.cfg, g.routes, g.gen
	g.mu.Unlock()
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var rawRoutes []byte
	if routes != cfg {
		if rawRoutes, err = json.Marshal(routes); err != nil {
			return nil, err
		}
	}
	level := g.l.log.GetLevel()
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return &wire.Message{
		Kind: wire.KindStart, Index: i, Config: raw, Routes: rawRoutes, Path: cfg.Path, Gen: gen, Addr: g.addr.String(), Shm: g.l.shared.seg.Path(),
		Backends: g.l.planeBackends(), Pools: g.l.planePools(), Log: &wire.Log{Level: level.String(), JSON: g.l.logJSON},
	}, nil
}

// read handles what process p sends until its channel closes.
func (g *planes) read(p *planeProc) {
	for {
		m, err := p.conn.Receive()
		if err != nil {
			return
		}
		switch m.Kind {
		case wire.KindReady, wire.KindFailed:
			select {
			case p.ready <- m:
			default:
			}
			if m.Kind == wire.KindFailed {
				g.log.Error("data-plane process failed", "plane", p.index, "pid", p.pid, "error", m.Error)
			}
		case wire.KindStaged:
			if m.Gen > p.ready1.Load() {
				p.ready1.Store(m.Gen)
			}
			select {
			case p.staged <- m.Gen:
			default:
			}
		case wire.KindEject:
			g.l.ejectFrom(m.Pool, m.Key, m.Error)
		case wire.KindError:
			if b := g.l.backendByKey(m.Pool, m.Key); b != nil {
				b.NoteError(m.Error)
			}
		case wire.KindStatus:
			_ = p.conn.Send(&wire.Message{Kind: wire.KindAnswer, ID: m.ID, Body: g.l.source.JSON()})
		}
	}
}

// supervise starts process i again each time it dies, until the group stops.
func (g *planes) supervise(i int, p *planeProc) {
	backoff := 100 * time.Millisecond
	for {
		<-p.exited
		if g.isStopping() {
			return
		}
		g.log.Error("data-plane process exited; starting another", "plane", i, "pid", p.pid, "exit", p.state.String())
		up := time.Now()
		for {
			time.Sleep(backoff)
			if g.isStopping() {
				return
			}
			np, err := g.spawn(i)
			if err == nil {
				g.mu.Lock()
				if g.stopping {
					g.mu.Unlock()
					np.kill()
					return
				}
				g.procs[i] = np
				g.mu.Unlock()
				g.catchUp(np)
				g.log.Info("data-plane process running", "plane", i, "pid", np.pid)
				p = np
				break
			}
			g.log.Error("data-plane process did not start; retrying", "plane", i, "error", err, "retry_in", backoff)
			backoff = min(2*backoff, 5*time.Second)
		}
		if time.Since(up) > time.Minute {
			backoff = 100 * time.Millisecond
		}
	}
}

// catchUp sends procs what may have changed since their start messages were made:
// the backends, the strategy's endpoint and the configuration; and has them reopen
// the access log, in case it was rotated after they opened it, before they could hear
// of it.
func (g *planes) catchUp(procs ...*planeProc) {
	g.mu.Lock()
	cfg, routes, gen := g.cfg, g.routes, g.gen
	g.mu.Unlock()
	raw, err := json.Marshal(cfg)
	var rawRoutes []byte
	if err == nil && routes != cfg {
		rawRoutes, err = json.Marshal(routes)
	}
	msgs := []*wire.Message{{Kind: wire.KindBackends, Backends: g.l.planeBackends(), Pools: g.l.planePools()}, {Kind: wire.KindPlugin, Pools: g.l.planePools()}}
	if err == nil {
		msgs = append(msgs, &wire.Message{Kind: wire.KindConfig, Config: raw, Routes: rawRoutes, Path: cfg.Path, Gen: gen})
	}
	msgs = append(msgs, &wire.Message{Kind: wire.KindReopen})
	for _, p := range procs {
		for _, m := range msgs {
			_ = p.conn.Send(m)
		}
	}
}

func (g *planes) isStopping() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopping
}

// send sends m to every running process; one that is down gets the state in force
// when it starts again.
func (g *planes) send(m *wire.Message) {
	g.mu.Lock()
	procs := append([]*planeProc(nil), g.procs...)
	g.mu.Unlock()
	for _, p := range procs {
		if err := p.conn.Send(m); err != nil {
			g.log.Debug("data-plane process unreachable", "plane", p.index, "pid", p.pid, "error", err)
		}
	}
}

// configure sends cfg to every process, to apply between two loop passes, and
// waits until each has the routing table of generation gen ready, for
// stageTimeout at most: one that is slower takes the table at its first request
// after it has it, and one that cannot apply cfg exits and is replaced.
func (g *planes) configure(cfg *config.Config, gen uint64) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		g.log.Error("encoding the configuration for data-plane processes", "error", err)
		return
	}
	g.mu.Lock()
	g.cfg = cfg
	procs := append([]*planeProc(nil), g.procs...)
	g.mu.Unlock()
	m := &wire.Message{Kind: wire.KindConfig, Config: raw, Path: cfg.Path, Gen: gen}
	for _, p := range procs {
		if err := p.conn.Send(m); err != nil {
			g.log.Debug("data-plane process unreachable", "plane", p.index, "pid", p.pid, "error", err)
		}
	}
	deadline := time.NewTimer(stageTimeout)
	defer deadline.Stop()
	for _, p := range procs {
	wait:
		for {
			select {
			case got := <-p.staged:
				if got >= gen {
					break wait
				}
			case <-p.exited:
				break wait
			case <-deadline.C:
				g.log.Warn("data-plane process slow to ready the new routes; it takes them once it has them", "plane", p.index, "pid", p.pid, "generation", gen)
				return
			}
		}
	}
}

// committed records that cfg's routing table, of generation gen, is in force, for
// processes started from now on; one that has not readied it (it was slow, or
// started meanwhile) is sent it again, and takes it at its first request after it
// has it.
func (g *planes) committed(cfg *config.Config, gen uint64) {
	g.mu.Lock()
	g.routes, g.gen = cfg, gen
	procs := append([]*planeProc(nil), g.procs...)
	g.mu.Unlock()
	var m *wire.Message
	for _, p := range procs {
		if p.ready1.Load() >= gen {
			continue
		}
		if m == nil {
			raw, err := json.Marshal(cfg)
			if err != nil {
				return
			}
			m = &wire.Message{Kind: wire.KindConfig, Config: raw, Path: cfg.Path, Gen: gen}
		}
		_ = p.conn.Send(m)
	}
}

// stageTimeout bounds the wait for data-plane processes to ready a new routing table.
const stageTimeout = 2 * time.Second

// Shutdown drains every process: each stops accepting, finishes its requests and
// exits. Those still running when ctx ends are killed, and ctx's error is returned.
func (g *planes) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.stopping = true
	procs := append([]*planeProc(nil), g.procs...)
	g.mu.Unlock()
	grace := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		grace = time.Until(d)
	}
	for _, p := range procs {
		_ = p.conn.Send(&wire.Message{Kind: wire.KindStop, GraceMS: max(grace.Milliseconds(), 1)})
	}
	var err error
	for _, p := range procs {
		select {
		case <-p.exited:
		case <-ctx.Done():
			err = ctx.Err()
			p.kill()
		}
	}
	g.wg.Wait()
	g.l.groupsMu.Lock()
	delete(g.l.groups, g)
	g.l.groupsMu.Unlock()
	return err
}

// kill ends p at once and waits until it is gone.
func (p *planeProc) kill() {
	_ = p.proc.Signal(syscall.SIGKILL) // a no-op once it has been waited for
	<-p.exited
}

// socketPair returns the two ends of a connected stream socket pair, closed on exec
// (exec.Cmd's ExtraFiles hands its end to the child).
func socketPair() (*os.File, *os.File, error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "control"), os.NewFile(uintptr(fds[1]), "control"), nil
}
