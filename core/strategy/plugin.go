package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
	"github.com/switchyard-lb/switchyard/sdk"
	"github.com/switchyard-lb/switchyard/sdk/proto"
	"github.com/switchyard-lb/switchyard/sdk/wire"
)

// Strategy states shown in the status JSON.
const (
	StateStarting   = "starting"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateFailed     = "failed"
	StateStopped    = "stopped"
)

// PickTimeout is how long a request waits for a plugin's answer before it takes the
// built-in pick instead.
const PickTimeout = 250 * time.Millisecond

// Spec says how to run a strategy plugin.
type Spec struct {
	// Name is the strategy's name in config.json.
	Name string
	// Pool names the pool whose requests the plugin picks for (default "default").
	// The plugin is told once, when it starts, and shows it to the strategy as
	// sdk.Request.Pool in every pick; so one plugin process serves one pool.
	Pool string
	// Command builds the plugin's command with exec.CommandContext(ctx, ...); each
	// start calls it anew. ctx ends only when the start is abandoned (StartContext),
	// and the plugin's process group is then killed through the command's Cancel.
	Command func(ctx context.Context) *exec.Cmd
	// Options are handed to the strategy's Configure.
	Options json.RawMessage
	// RuntimeDir holds the plugin's sockets (see RuntimeDir).
	RuntimeDir string
	// Log receives the core's lines about the plugin and the plugin's own lines.
	Log hclog.Logger
	// StartTimeout bounds a start up to the plugin's first answer (default 10s).
	StartTimeout time.Duration
	// Counters, when set, hold the fallbacks, timeouts and bad answers, counted
	// with those of the data-plane processes; Start zeroes them.
	Counters *shm.Strategy
	// Launched, when set, is called after each start of the plugin, the first
	// included, once its pick channel is open (see Plugin.Endpoint).
	Launched func()
}

// BundledSpec is the Spec of a bundled strategy: the core's own executable,
// re-executed in plugin mode. The caller sets the Spec's Pool.
func BundledSpec(name string) (Spec, error) {
	return selfSpec(name, pluginModeEnv+"="+name)
}

// ScriptSpec is the Spec of the strategy script at path: the core's own executable,
// re-executed to run the script. The caller sets the Spec's Pool.
func ScriptSpec(name, path string) (Spec, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Spec{}, fmt.Errorf("strategy %q: %w", name, err)
	}
	return selfSpec(name, script.PluginEnv(abs))
}

// selfSpec runs the core's own executable with env added to its environment.
func selfSpec(name, env string) (Spec, error) {
	self, err := os.Executable()
	if err != nil {
		return Spec{}, fmt.Errorf("strategy %q: finding the core's executable: %w", name, err)
	}
	return Spec{Name: name, Command: func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, self)
		cmd.Env = append(os.Environ(), env)
		return cmd
	}}, nil
}

// Plugin is a Picker whose strategy runs in a plugin process that it starts and
// supervises: a crashed or hung plugin is restarted with backoff, and while it is
// down, or when it answers late or wrongly, requests take a built-in
// least-connections pick instead (logged and counted).
//
// A strategy that schedules (sdk.Scheduler) is asked once per candidate set; each
// pick then walks its schedule in the core, lock-free. Picks made while a schedule
// is on its way, and all picks of other strategies, ask the plugin.
//
// Plugin is safe for use by multiple goroutines.
type Plugin struct {
	spec     Spec
	log      hclog.Logger
	fallback *Local

	ch    atomic.Pointer[channel] // nil while the plugin is down
	state atomic.Pointer[string]
	pid   atomic.Int64

	// The figures point into own, or into the shared segment (Spec.Counters).
	fallbacks  *atomic.Uint64
	timeouts   *atomic.Uint64
	badAnswers *atomic.Uint64
	own        struct{ fallbacks, timeouts, badAnswers atomic.Uint64 }
	restarts   atomic.Uint64
	lateInRow  atomic.Int64
	lastLog    atomic.Int64 // unix nanoseconds of the last fallback log line
	// refuse: a pick the strategy fails to make is refused (ErrStrategyFailed)
	// instead of taken by the built-in one (on_failure "refuse").
	refuse atomic.Bool

	attached bool // see Attach
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	client   *plugin.Client // guarded by mu
	groupPID int            // the plugin's process group; guarded by mu
}

// launches numbers the plugin starts of this process, for their socket names.
var launches atomic.Uint64

// Start launches the plugin and returns once it answers, or with the error that kept
// it from starting (its options refused, its command failing). It then keeps the
// plugin running until Close.
func Start(spec Spec) (*Plugin, error) { return StartContext(context.Background(), spec) }

// StartContext is Start, abandoned if ctx ends before the plugin answers: the
// plugin's whole process group is killed at once, and the error wraps ctx's cause
// (context.Canceled for a plain cancel). Once started, the plugin no longer depends
// on ctx.
func StartContext(ctx context.Context, spec Spec) (*Plugin, error) {
	life, cancel := context.WithCancel(context.Background())
	spec.Pool = poolName(spec.Pool)
	p := &Plugin{spec: spec, log: spec.Log, fallback: NewLocalFor(spec.Pool, spec.Name, leastconn.New()), cancel: cancel, done: make(chan struct{})}
	p.count(spec.Counters)
	if c := spec.Counters; c != nil {
		c.Fallbacks().Store(0)
		c.Timeouts().Store(0)
		c.BadAnswers().Store(0)
	}
	p.setState(StateStarting)
	ch, err := p.launch(ctx)
	if err != nil {
		cancel()
		close(p.done)
		return nil, err
	}
	p.ch.Store(ch)
	p.setState(StateRunning)
	go p.supervise(life, ch)
	return p, nil
}

// count points the plugin's figures at c, or at its own memory when c is nil.
func (p *Plugin) count(c *shm.Strategy) {
	if c != nil {
		p.fallbacks, p.timeouts, p.badAnswers = c.Fallbacks(), c.Timeouts(), c.BadAnswers()
		return
	}
	p.fallbacks, p.timeouts, p.badAnswers = &p.own.fallbacks, &p.own.timeouts, &p.own.badAnswers
}

// Name is the strategy's name.
func (p *Plugin) Name() string { return p.spec.Name }

// Status reports the plugin's state.
func (p *Plugin) Status() Status {
	return Status{
		Name: p.spec.Name, State: *p.state.Load(), PID: int(p.pid.Load()),
		Fallbacks: p.fallbacks.Load(), Timeouts: p.timeouts.Load(),
		BadAnswers: p.badAnswers.Load(), Restarts: p.restarts.Load(),
	}
}

func (p *Plugin) setState(s string) { p.state.Store(&s) }

// Pick walks the plugin's schedule or asks the plugin, falling back to the built-in
// pick when it cannot answer well.
func (p *Plugin) Pick(req *Request, cands, exclude []*backend.Backend) (*backend.Backend, error) {
	b, ch, err := p.pickNow(req, cands, exclude)
	if ch == nil {
		return b, err
	}
	cl := ch.send(req, cands, exclude, nil)
	if cl == nil {
		return p.fallBack(req, cands, exclude, "plugin down", ch.err)
	}
	var a answer
	select {
	case a = <-cl.ch:
		callPool.Put(cl)
	case <-ch.dead: // the call may still be answered late: leave it to the GC
		a = answer{index: answerDead}
	}
	return p.answerOf(ch, a, req, cands, exclude)
}

// PickAsync is Pick for a caller that must not wait, such as an event loop. When the
// pick needs no answer from the plugin (a schedule, one candidate, a fallback), it is
// returned at once with pending false. Otherwise the question is sent, pending is
// true, and done receives the pick later, from another goroutine; req, cands and
// exclude must stay as they are until then.
func (p *Plugin) PickAsync(req *Request, cands, exclude []*backend.Backend, done func(*backend.Backend, error)) (b *backend.Backend, pending bool, err error) {
	b, ch, err := p.pickNow(req, cands, exclude)
	if ch == nil {
		return b, false, err
	}
	cl := ch.send(req, cands, exclude, func(a answer) { done(p.answerOf(ch, a, req, cands, exclude)) })
	if cl == nil {
		b, err = p.fallBack(req, cands, exclude, "plugin down", ch.err)
		return b, false, err
	}
	return nil, true, nil
}

// pickNow picks what needs no question to the plugin. It returns the channel to ask
// when the plugin must be asked, and nil with the pick otherwise.
func (p *Plugin) pickNow(req *Request, cands, exclude []*backend.Backend) (*backend.Backend, *channel, error) {
	switch {
	case len(cands) == 0:
		return nil, nil, ErrNoBackend
	case len(cands) == 1 && !p.refuse.Load(): // nothing to choose: no need to ask
		// (A strategy that fails closed may decline the one there is: it is asked.)
		return cands[0], nil, nil
	}
	ch := p.ch.Load()
	if ch == nil {
		b, err := p.fallBack(req, cands, exclude, "plugin down", nil)
		return b, nil, err
	}
	s := ch.plans.current(cands)
	if s == nil {
		s = ch.schedule(cands)
	}
	if s != nil {
		switch s.kind {
		case planWalk:
			return s.pick(exclude), nil, nil
		case planInvalid:
			if s.noted.CompareAndSwap(false, true) {
				p.badAnswers.Add(1)
			}
			b, err := p.fallBack(req, cands, exclude, "bad schedule", s.err)
			return b, nil, err
		}
		if s.noted.CompareAndSwap(false, true) {
			p.log.Info("strategy declined to schedule these backends; asking it for each pick", "error", s.err)
		}
	}
	return nil, ch, nil
}

// answerOf turns the plugin's answer on ch into the pick.
func (p *Plugin) answerOf(ch *channel, a answer, req *Request, cands, exclude []*backend.Backend) (*backend.Backend, error) {
	switch {
	case a.index >= 0 && int(a.index) < len(cands):
		p.lateInRow.Store(0)
		return cands[a.index], nil
	case a.index == wire.PickDeclined: // the strategy says no backend suits this request
		p.lateInRow.Store(0)
		return nil, fmt.Errorf("%w: %s", ErrNoBackend, a.err)
	case a.index == answerDead:
		return p.fallBack(req, cands, exclude, "plugin down", ch.err)
	case a.index == answerLate:
		p.timeouts.Add(1)
		// A plugin that keeps missing deadlines and has said nothing for a while
		// is hung: end it, and the supervisor starts a new one.
		if p.lateInRow.Add(1) >= 3 && time.Since(time.Unix(0, ch.lastAnswer.Load())) > 2*PickTimeout {
			ch.die(errors.New("strategy stopped answering picks"))
		}
		return p.fallBack(req, cands, exclude, "pick timed out", nil)
	}
	p.lateInRow.Store(0)
	p.badAnswers.Add(1)
	return p.fallBack(req, cands, exclude, "bad answer", errors.New(a.err))
}

// fallBack picks with the built-in strategy and logs why, at most once a second; a
// strategy that fails closed refuses the request instead.
func (p *Plugin) fallBack(req *Request, cands, exclude []*backend.Backend, why string, err error) (*backend.Backend, error) {
	if p.refuse.Load() {
		if p.logDue() {
			p.log.Warn("strategy failed: refusing the request (on_failure is refuse)", "reason", why, "error", err)
		}
		return nil, fmt.Errorf("%w: %s", ErrStrategyFailed, why)
	}
	n := p.fallbacks.Add(1)
	if p.logDue() {
		p.log.Warn("strategy fallback: using the built-in least-connections pick", "reason", why, "error", err, "fallbacks_total", n)
	}
	return p.fallback.Pick(req, cands, exclude)
}

// logDue reports whether a failed pick may be logged now: at most once a second.
func (p *Plugin) logDue() bool {
	now, last := time.Now().UnixNano(), p.lastLog.Load()
	return now-last > int64(time.Second) && p.lastLog.CompareAndSwap(last, now)
}

// SetRefuse chooses what a pick the strategy fails to make gets: ErrStrategyFailed
// when refuse is set (on_failure "refuse"), else the built-in pick.
func (p *Plugin) SetRefuse(refuse bool) { p.refuse.Store(refuse) }

// Observe sends the outcome to the plugin if its strategy observes.
func (p *Plugin) Observe(_ *backend.Backend, o sdk.Outcome) {
	if ch := p.ch.Load(); ch != nil {
		ch.observe(o)
	}
}

// Close stops the plugin and its supervision; picks fall back from then on. An
// attached Plugin (Attach) closes its channel; the plugin process is not its own.
func (p *Plugin) Close() {
	p.cancel()
	<-p.done
	if p.attached {
		if ch := p.ch.Swap(nil); ch != nil {
			ch.die(errors.New("closed"))
		}
		p.setState(StateStopped)
	}
}

// supervise keeps the plugin running: when its channel dies it is killed and started
// again, with growing delays while starts fail.
func (p *Plugin) supervise(ctx context.Context, ch *channel) {
	defer close(p.done)
	backoff := 100 * time.Millisecond
	failures := 0
	for {
		p.ch.Store(ch)
		p.setState(StateRunning)
		up := time.Now()
		select {
		case <-ctx.Done():
		case <-ch.dead:
		}
		p.ch.Store(nil)
		ch.die(errors.New("plugin stopped"))
		p.kill()
		if ctx.Err() != nil {
			p.setState(StateStopped)
			return
		}
		p.restarts.Add(1)
		p.setState(StateRestarting)
		p.log.Error("strategy plugin failed; restarting", "error", ch.err, "pid", p.pid.Load())
		if time.Since(up) > time.Minute {
			backoff, failures = 100*time.Millisecond, 0
		}
		for {
			select {
			case <-ctx.Done():
				p.setState(StateStopped)
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 10*time.Second)
			var err error
			if ch, err = p.launch(ctx); err == nil {
				break
			}
			if ctx.Err() != nil { // Close abandoned the start
				p.setState(StateStopped)
				return
			}
			if failures++; failures >= 3 {
				p.setState(StateFailed)
			}
			p.log.Error("strategy plugin did not start; retrying", "error", err, "retry_in", backoff)
		}
	}
}

// kill ends the plugin process and every process it started.
func (p *Plugin) kill() {
	p.mu.Lock()
	c, pid := p.client, p.groupPID
	p.client, p.groupPID = nil, 0
	p.mu.Unlock()
	if c != nil {
		stop(c, pid)
	}
}

// stopGrace is how long a running plugin may take to exit once asked, before its
// whole process group is killed. go-plugin itself waits 2s before it kills the
// plugin's process.
const stopGrace = 3 * time.Second

// stop ends a running plugin: go-plugin asks it to exit, and kills it if it does
// not. Its process group goes too: at once if the client is still waiting after
// stopGrace (a process the plugin started, a shell script's child, may hold its
// output open, and the client waits for that output to end), and in any case
// afterwards, for what the plugin left behind.
func stop(c *plugin.Client, pid int) {
	done := make(chan struct{})
	go func() {
		c.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(stopGrace):
		killGroup(pid)
		<-done
	}
	killGroup(pid)
}

// abort ends a plugin that failed to start: its group first, for the same reason.
func abort(c *plugin.Client, pid int) {
	if pid > 0 {
		killGroup(pid)
	}
	c.Kill()
}

// launch starts a plugin process, configures it and connects its pick channel. If
// ctx ends first, the start is abandoned: the plugin's process group is killed, and
// launch returns at once with an error wrapping ctx's cause.
func (p *Plugin) launch(ctx context.Context) (*channel, error) {
	// The process's own context ends only if ctx ends during the start: once
	// started, the plugin runs whatever becomes of ctx.
	procCtx, abandon := context.WithCancel(context.Background())
	cmd := p.spec.Command(procCtx)
	// The plugin leads a process group of its own, so that stopping it stops what
	// it started; on Linux it also dies with the core (see spawn).
	cmd.SysProcAttr = pluginProcAttr()
	// Abandoning kills the whole group: a process the plugin started (a shell
	// script's child) holds its output open, and go-plugin waits for that output
	// to end.
	cmd.Cancel = func() error {
		killGroup(cmd.Process.Pid)
		return nil
	}
	watching := context.AfterFunc(ctx, abandon)
	// go-plugin hands its socket directory to the plugin only when it runs the
	// command itself through a RunnerFunc; without this the plugin listens in the
	// system's temporary directory, and a plugin killed with SIGKILL leaves its
	// socket file there for good. In the runtime directory it goes with the core.
	// The environment is built here, whole (SkipHostEnv), so that the directory is
	// the last word even where the core's own environment names another.
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	if p.spec.RuntimeDir != "" {
		cmd.Env = append(cmd.Env, plugin.EnvUnixSocketDir+"="+p.spec.RuntimeDir)
	}
	timeout := p.spec.StartTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  sdk.Handshake,
		Plugins:          plugin.PluginSet{sdk.PluginName: &sdk.GRPCPlugin{}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		SkipHostEnv:      true,
		Logger:           onceNamed{p.log},
		StartTimeout:     timeout,
	})
	var rpc plugin.ClientProtocol
	var err error
	spawn(func() { rpc, err = client.Client() })
	pid := 0
	if cmd.Process != nil {
		pid = cmd.Process.Pid
	}
	var ch *channel
	if err != nil {
		err = fmt.Errorf("strategy %q: starting plugin: %w%s", p.spec.Name, err, notAPluginHint(err))
	} else {
		ch, err = p.connect(ctx, rpc)
	}
	// From here on ctx ends nothing: the plugin runs, or is aborted below.
	if !watching() && err == nil { // ctx ended just as it answered: it is being killed
		ch.die(errors.New("start abandoned"))
		err = ctx.Err()
	}
	if err != nil {
		abort(client, pid)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("strategy %q: start abandoned: %w", p.spec.Name, context.Cause(ctx))
		}
		return nil, err
	}
	p.mu.Lock()
	p.client, p.groupPID = client, pid
	p.mu.Unlock()
	p.pid.Store(int64(pid))
	p.log.Info("strategy plugin running", "pid", pid, "headers", ch.headers, "observes", ch.observes, "schedules", ch.schedules)
	if p.spec.Launched != nil {
		p.ch.Store(ch) // Launched reads it through Endpoint
		p.spec.Launched()
	}
	return ch, nil
}

// onceNamed is the plugin client's logger: go-plugin would name the plugin's lines
// once more after its executable ("lb.sticky.core"), the strategy's name is enough.
type onceNamed struct{ hclog.Logger }

// Named returns the logger unchanged.
func (l onceNamed) Named(string) hclog.Logger { return l }

// notAPluginHint explains the go-plugin errors of a program that is not a strategy
// plugin: it printed something else than the handshake, or exited without one.
func notAPluginHint(err error) string {
	msg := err.Error()
	if strings.Contains(msg, "Unrecognized remote plugin message") || strings.Contains(msg, "plugin exited before we could connect") ||
		strings.Contains(msg, "timeout while waiting for plugin to start") {
		return " (is it a strategy plugin? Its main must call sdk.Serve, and print nothing before it)"
	}
	return ""
}

// connect starts the strategy over the control protocol and dials its pick channel;
// ctx ends the wait for the strategy's answer.
func (p *Plugin) connect(ctx context.Context, rpc plugin.ClientProtocol) (*channel, error) {
	raw, err := rpc.Dispense(sdk.PluginName)
	if err != nil {
		return nil, fmt.Errorf("strategy %q: %w", p.spec.Name, err)
	}
	// Unique in the process: a plugin replaced on reload keeps its socket until its
	// channel ends, and its successor may have the same name.
	sock := filepath.Join(p.spec.RuntimeDir, fmt.Sprintf("%s-%d.sock", p.spec.Name, launches.Add(1)))
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := raw.(proto.StrategyClient).Start(ctx, &proto.StartRequest{Options: p.spec.Options, SocketPath: sock, Pool: p.spec.Pool})
	if err != nil {
		return nil, fmt.Errorf("strategy %q: %w", p.spec.Name, err)
	}
	conn, err := net.Dial("unix", sock)
	if err != nil {
		_ = os.Remove(sock)
		return nil, fmt.Errorf("strategy %q: connecting the pick channel: %w", p.spec.Name, err)
	}
	// The socket stays for data-plane processes to connect (see Endpoint), until
	// the channel ends.
	ch := newChannel(conn, resp.Headers, resp.Observes, resp.Schedules)
	ch.sock = sock
	go func() {
		<-ch.dead
		_ = os.Remove(sock)
	}()
	return ch, nil
}

// Interface guards
var (
	_ Picker      = (*Plugin)(nil)
	_ AsyncPicker = (*Plugin)(nil)
)
