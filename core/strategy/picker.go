// Package strategy connects the proxy to a backend-selection strategy written against
// the sdk: it turns the live backend set into the sdk's view, asks the strategy, and
// feeds outcomes back.
//
// A Picker serves one pool (DESIGN section 4.1): the core makes one for each pool,
// even for pools that name the same strategy, and names the pool when it makes it
// (NewLocalFor, Spec.Pool, AttachFor). The strategy sees that name as
// sdk.Request.Pool in every pick; it does not travel with each Request.
package strategy

import (
	"errors"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/sdk"
)

// ErrNoBackend means no candidate backend can take the request: the client gets 503.
var ErrNoBackend = errors.New("strategy: no backend available")

// ErrStrategyFailed means the strategy failed to pick (it crashed, is restarting,
// hung or answered nonsense) and fails closed (on_failure "refuse"): the client gets
// 503 rather than the built-in pick.
var ErrStrategyFailed = errors.New("strategy failed")

// Request is the proxy's view of a request, as byte slices valid during Pick only.
// Its pool is the Picker's own (see the package doc).
type Request struct {
	Method, Host, Path, RemoteAddr []byte
	// Header gives the request's header values (nil when absent).
	Header interface{ Peek(name string) []byte }
}

// AsyncPicker is a Picker that can pick without blocking its caller: see
// Plugin.PickAsync.
type AsyncPicker interface {
	PickAsync(req *Request, candidates, exclude []*backend.Backend, done func(*backend.Backend, error)) (b *backend.Backend, pending bool, err error)
}

// Picker chooses the backend for each request and hears how it went.
//
// Pickers are safe for use by multiple goroutines.
type Picker interface {
	// Pick returns one of candidates, skipping those in exclude (backends this request
	// already failed on) unless nothing else is left.
	Pick(req *Request, candidates, exclude []*backend.Backend) (*backend.Backend, error)
	// Observe reports the outcome of a request sent to b.
	Observe(b *backend.Backend, o sdk.Outcome)
	// Name is the strategy's name as config.json gives it.
	Name() string
	// Status reports the strategy's state.
	Status() Status
	// Close stops the strategy; the picker must not be used afterwards.
	Close()
}

// Status is a strategy's state for the status JSON.
type Status struct {
	Name       string `json:"name"`
	State      string `json:"state"` // starting, running, restarting, failed, stopped
	PID        int    `json:"pid"`   // the process the strategy runs in
	Fallbacks  uint64 `json:"fallbacks"`
	Timeouts   uint64 `json:"timeouts"`
	BadAnswers uint64 `json:"bad_answers"`
	Restarts   uint64 `json:"restarts"`
	// Pending is the strategy that an edit is starting, while it has not answered
	// yet; absent otherwise. The strategy above keeps picking until it answers.
	Pending *Pending `json:"pending,omitempty"`
}

// Pending describes a strategy being started to replace the one in force.
type Pending struct {
	Name   string    `json:"name"`
	Since  time.Time `json:"since"`  // when its start began
	Reason string    `json:"reason"` // what it waits for, and until when at most
}

// Local runs an sdk.Strategy in the core's own process. Calls into the strategy are
// serialized by a mutex, keeping the sdk's promise that a strategy needs no locks.
// The schedule of an sdk.Scheduler is walked without the mutex.
type Local struct {
	name      string
	pool      string // sdk.Request.Pool of every pick
	s         sdk.Strategy
	observer  sdk.Observer  // nil when the strategy does not observe
	scheduler sdk.Scheduler // nil when the strategy does not schedule
	headers   []string
	plans     schedules // changed under mu

	mu   sync.Mutex
	view []sdk.Backend      // reused for each Pick; guarded by mu
	pick []*backend.Backend // view[i] describes pick[i]; guarded by mu
	req  sdk.Request        // guarded by mu
}

// NewLocal wraps s, which config.json calls name, for the pool "default": it is
// NewLocalFor(config.DefaultPool, name, s).
func NewLocal(name string, s sdk.Strategy) *Local { return NewLocalFor(config.DefaultPool, name, s) }

// NewLocalFor wraps s, which config.json calls name, for the requests of pool (""
// means "default"): s sees pool as sdk.Request.Pool in every pick. s must serve
// no other Local.
func NewLocalFor(pool, name string, s sdk.Strategy) *Local {
	l := &Local{name: name, pool: poolName(pool), s: s}
	l.observer, _ = s.(sdk.Observer)
	l.scheduler, _ = s.(sdk.Scheduler)
	if h, ok := s.(sdk.Headerer); ok {
		l.headers = h.Headers()
	}
	return l
}

// Name is the strategy's name.
func (l *Local) Name() string { return l.name }

// Status reports the strategy running in the core's own process.
func (l *Local) Status() Status { return Status{Name: l.name, State: StateRunning, PID: os.Getpid()} }

// Close does nothing: an in-process strategy has nothing to stop.
func (l *Local) Close() {}

// Pick asks the strategy to choose among the candidates not excluded, or walks its
// schedule.
func (l *Local) Pick(req *Request, candidates, exclude []*backend.Backend) (*backend.Backend, error) {
	if len(candidates) == 0 {
		return nil, ErrNoBackend
	}
	if l.scheduler != nil && len(candidates) > 1 {
		s := l.plans.current(candidates)
		if s == nil {
			s = l.schedule(candidates)
		}
		if s != nil && s.kind == planWalk {
			return s.pick(exclude), nil
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.view, l.pick = l.view[:0], l.pick[:0]
	for _, b := range candidates {
		if !contains(exclude, b) {
			l.view = append(l.view, View(b))
			l.pick = append(l.pick, b)
		}
	}
	if len(l.pick) == 0 { // every candidate failed this request already: try them again
		for _, b := range candidates {
			l.view = append(l.view, View(b))
			l.pick = append(l.pick, b)
		}
	}
	if len(l.pick) == 1 {
		return l.pick[0], nil
	}
	l.fillRequest(req)
	i, err := l.s.Pick(&l.req, l.view)
	if err != nil {
		return nil, errors.Join(ErrNoBackend, err)
	}
	if i < 0 || i >= len(l.pick) {
		return l.pick[(int(uint(i)))%len(l.pick)], nil
	}
	return l.pick[i], nil
}

// schedule returns the schedule for cands when the one in force was not made for
// them (see schedules.miss), asking the strategy for one when they are new; nil when
// their picks ask the strategy.
func (l *Local) schedule(cands []*backend.Backend) *schedule {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ask := l.plans.miss(cands)
	if !ask {
		return s
	}
	l.view = l.view[:0]
	weights := make([]int, len(cands))
	for i, b := range cands {
		l.view = append(l.view, View(b))
		weights[i] = l.view[i].Weight
	}
	sc, err := l.scheduler.Schedule(l.view)
	l.plans.seen.add(seenSet{cands: cands, asked: true, weights: weights})
	return l.plans.install(cands, newPlan(weights, sc.Order, sc.Least, err))
}

// fillRequest describes req to the strategy. The strings alias req's bytes: the sdk
// forbids keeping them past Pick. l.mu must be held.
func (l *Local) fillRequest(req *Request) {
	l.req.Method, l.req.Host = unsafeString(req.Method), unsafeString(req.Host)
	l.req.Path, l.req.RemoteAddr = unsafeString(req.Path), unsafeString(req.RemoteAddr)
	l.req.Pool = l.pool // set again: the strategy may have written over it
	if len(l.headers) == 0 {
		return
	}
	if l.req.Headers == nil {
		l.req.Headers = make(map[string]string, len(l.headers))
	}
	for _, h := range l.headers {
		l.req.Headers[h] = string(req.Header.Peek(h))
	}
}

// Observe hands the outcome to the strategy if it is an sdk.Observer.
func (l *Local) Observe(_ *backend.Backend, o sdk.Outcome) {
	if l.observer == nil {
		return
	}
	l.mu.Lock()
	l.observer.Observe(o)
	l.mu.Unlock()
}

// View describes b as the sdk shows it to strategies.
func View(b *backend.Backend) sdk.Backend {
	return sdk.Backend{
		URL:         b.URL,
		Weight:      b.Weight(),
		Inflight:    b.Inflight(),
		QueueLength: b.QueueLength(),
		Latency:     b.Latency().Round(time.Microsecond),
		ErrorRate:   b.ErrorRate(),
	}
}

// poolName is the name of pool as strategies see it: "" is the default pool.
func poolName(pool string) string {
	if pool == "" {
		return config.DefaultPool
	}
	return pool
}

func contains(list []*backend.Backend, b *backend.Backend) bool {
	for _, x := range list {
		if x == b {
			return true
		}
	}
	return false
}

func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Interface guards
var _ Picker = (*Local)(nil)
