package exchange

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/sdk"
)

// Settings are the live-changeable knobs of the request path.
type Settings struct {
	StatusPath string // answered with the status JSON, GET or POST
	// ReuseAlways lets a client connection's first request take an idle backend
	// connection another client used last (load_balancer.reuse "always"); by default
	// ("safe") it goes on a connection of its own.
	ReuseAlways    bool
	MaxHeaders     int           // more request header fields get 431
	ConnectTimeout time.Duration // dialing a backend
	Idle           time.Duration // longest silence of an upgraded (WebSocket) connection
	AccessLog      *AccessLog    // one line per request; nil: off
}

// OutcomeObserver hears the result of every request sent to a backend; it must not
// block (passive health checks implement it).
type OutcomeObserver interface {
	Observe(b *backend.Backend, failed bool, errMsg string)
}

// Config builds a Proxy.
type Config struct {
	Pool *pool.Pool
	// Table routes requests to the pools (see NewTable).
	Table *Table
	// Commit, when set, is the generation of the table every process of the load
	// balancer serves with: a table set with Stage takes over once Commit names its
	// generation (see Table). Nil: SetTable takes over at once.
	Commit   *atomic.Uint64
	Settings Settings
	// Outcomes hears each request's result (nil: nobody).
	Outcomes OutcomeObserver
	// Own counts the answers made without a backend (nil: the Proxy's own memory).
	Own *backend.Answers
	Log hclog.Logger
}

// Proxy is what every front shares for the requests it serves: admission (the worker
// pool), the routes and their pools, the live settings, and where each request's
// outcome goes (the backend's figures, passive health, the strategy, the access log).
//
// Proxy is safe for use by multiple goroutines; its table and settings may be
// replaced while requests are served.
type Proxy struct {
	pool     *pool.Pool
	table    atomic.Pointer[Table]
	staged   atomic.Pointer[Table]
	commit   *atomic.Uint64
	settings atomic.Pointer[Settings]
	outcomes OutcomeObserver
	own      *backend.Answers
	log      hclog.Logger
}

// pickerBox lets an interface live in an atomic.Pointer.
type pickerBox struct{ strategy.Picker }

// New returns a Proxy.
func New(cfg Config) *Proxy {
	p := &Proxy{pool: cfg.Pool, commit: cfg.Commit, outcomes: cfg.Outcomes, own: cfg.Own, log: cfg.Log}
	if p.own == nil {
		p.own = new(backend.Answers)
	}
	if p.outcomes == nil {
		p.outcomes = nobody{}
	}
	if p.log == nil {
		p.log = hclog.NewNullLogger()
	}
	p.table.Store(cfg.Table)
	p.SetSettings(cfg.Settings)
	return p
}

// Table returns the routes requests are served with now. Where processes switch
// together (Config.Commit), a staged table takes over at the first request after its
// generation is committed, in every process at once.
func (p *Proxy) Table() *Table {
	t := p.table.Load()
	if p.commit != nil {
		if g := p.commit.Load(); g != t.Gen {
			if s := p.staged.Load(); s != nil && s.Gen == g {
				p.table.CompareAndSwap(t, s)
				return s
			}
		}
	}
	return t
}

// SetTable makes t route requests from now on.
func (p *Proxy) SetTable(t *Table) {
	p.staged.Store(nil)
	p.table.Store(t)
}

// Stage readies t to take over once Config.Commit names its generation; without a
// commit word it takes over at once.
func (p *Proxy) Stage(t *Table) {
	if p.commit == nil {
		p.SetTable(t)
		return
	}
	p.staged.Store(t)
}

// nobody is the OutcomeObserver that hears nothing.
type nobody struct{}

func (nobody) Observe(*backend.Backend, bool, string) {}

// SetSettings applies s to requests from now on.
func (p *Proxy) SetSettings(s Settings) { p.settings.Store(&s) }

// Settings returns the settings requests are served with now.
func (p *Proxy) Settings() *Settings { return p.settings.Load() }

// Pool is the worker pool that admits requests.
func (p *Proxy) Pool() *pool.Pool { return p.pool }

// OwnAnswers counts the answers made without a backend: shed, no backend, refused
// requests.
func (p *Proxy) OwnAnswers() *backend.Answers { return p.own }

// Log is the data plane's log.
func (p *Proxy) Log() hclog.Logger { return p.log }

// Outcomes returns the observer that hears every request's result.
func (p *Proxy) Outcomes() OutcomeObserver { return p.outcomes }

// Record ends one round trip to b that the picker pk placed: the backend's figures,
// passive health and the strategy hear how it went. status 0 means that no answer
// came; errMsg is "" unless the round trip failed short of an answer. A 5xx answer
// counts as a failure.
func (p *Proxy) Record(pk strategy.Picker, b *backend.Backend, status int, errMsg string, latency time.Duration) {
	failed := errMsg != "" || status >= 500
	b.Finish(latency, failed)
	if failed && errMsg == "" {
		errMsg = "status " + strconv.Itoa(status)
	}
	p.outcomes.Observe(b, failed, errMsg)
	pk.Observe(b, sdk.Outcome{URL: b.URL, Status: status, Latency: latency, Err: errMsg})
}

// Finish records a request's answer once it is sent: its status and duration and
// body bytes on answers (the backend's that served it, or OwnAnswers when none did),
// and its access-log line when the log is on.
func (p *Proxy) Finish(answers *backend.Answers, e *Entry) {
	answers.Add(e.Status, e.Duration)
	answers.AddBytes(e.In, e.Out)
	if l := p.settings.Load().AccessLog; l != nil {
		l.Record(e)
	}
}
