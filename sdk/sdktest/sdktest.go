// Package sdktest lets a strategy's author test it without a proxy or a subprocess:
// it drives a Strategy over scripted backends as the load balancer would, keeping
// in-flight counts, and reports where the requests went.
//
//	func TestMyStrategy(t *testing.T) {
//		h := sdktest.New(t, mystrategy.New(), sdktest.Backends("http://a:1", "http://b:1")...)
//		counts := h.Spread(&sdk.Request{Method: "GET", Path: "/"}, 100)
//		if counts["http://a:1"] != 50 { ... }
//	}
//
// For an sdk.Scheduler, the harness walks the strategy's schedule as the load
// balancer does, asking for a new one after SetBackends; Schedule shows it.
//
// Requests carry the pool the strategy serves as sdk.Request.Pool: "default", or
// the name given to SetPool, unless the request names its own.
package sdktest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/sdk"
)

// Backends returns equal backends (weight 1, nothing in flight, no reported queue)
// with the given URLs.
func Backends(urls ...string) []sdk.Backend {
	out := make([]sdk.Backend, len(urls))
	for i, u := range urls {
		out[i] = sdk.Backend{URL: u, Weight: 1, QueueLength: -1}
	}
	return out
}

// Harness drives one strategy. It is not safe for concurrent use, as strategies are not.
type Harness struct {
	t        testing.TB
	s        sdk.Strategy
	backends []sdk.Backend
	walk     *walk  // the schedule of an sdk.Scheduler; nil until asked
	pool     string // see SetPool
}

// walk is a schedule as the load balancer walks it.
type walk struct {
	order []int // never empty
	least bool
	err   error // the strategy declined: Pick answers each request
	next  int   // position of the next pick in order
}

// New returns a harness for s over backends. If s is an sdk.Configurer it is
// configured with no options (the JSON null, as the load balancer does); use
// Configure for others.
func New(t testing.TB, s sdk.Strategy, backends ...sdk.Backend) *Harness {
	t.Helper()
	h := &Harness{t: t, s: s, pool: defaultPool}
	h.SetBackends(backends...)
	if c, ok := s.(sdk.Configurer); ok {
		if err := c.Configure(json.RawMessage("null")); err != nil {
			t.Fatalf("Configure(null) = %v", err)
		}
	}
	return h
}

// Configure hands options to the strategy's Configure, as the load balancer does
// with the plugin's `options` in config.json: JSON text as it is (a
// json.RawMessage, []byte or string), any other value marshalled to JSON.
func (h *Harness) Configure(options any) error {
	c, ok := h.s.(sdk.Configurer)
	if !ok {
		h.t.Fatalf("strategy %T does not implement sdk.Configurer", h.s)
	}
	var raw json.RawMessage
	switch o := options.(type) {
	case json.RawMessage:
		raw = o
	case []byte:
		raw = o
	case string:
		raw = json.RawMessage(o)
	default:
		var err error
		if raw, err = json.Marshal(options); err != nil {
			h.t.Fatalf("marshalling options: %v", err)
		}
	}
	if !json.Valid(raw) {
		h.t.Fatalf("Configure(%q): not JSON", raw)
	}
	return c.Configure(raw)
}

// SetBackends replaces the candidate backends, as a health change or a config edit
// does. An sdk.Scheduler is asked for a new schedule at the next pick.
func (h *Harness) SetBackends(backends ...sdk.Backend) {
	h.backends = append([]sdk.Backend(nil), backends...)
	h.walk = nil
}

// defaultPool is the pool a Harness's requests are in until SetPool: the load
// balancer's pool of `servers`, which takes the requests no route matched.
const defaultPool = "default"

// SetPool names the pool the strategy serves, as the load balancer runs one
// instance of a strategy for each pool that names it: Pick then gives name as
// sdk.Request.Pool to requests that do not name a pool themselves.
func (h *Harness) SetPool(name string) { h.pool = name }

// Backends returns the candidates as the strategy sees them now.
func (h *Harness) Backends() []sdk.Backend { return h.backends }

// Pick asks the strategy for a backend for req, or walks its schedule if it is an
// sdk.Scheduler, and, as the proxy would, counts the request in flight on the
// backend. It fails the test on an index out of range. A nil req is a GET of /;
// a req without a Pool is in the harness's pool (see SetPool). req itself is
// left as it is.
func (h *Harness) Pick(req *sdk.Request) (string, error) {
	h.t.Helper()
	if req == nil {
		req = &sdk.Request{Method: "GET", Path: "/"}
	}
	if req.Pool == "" {
		r := *req
		r.Pool = h.pool
		req = &r
	}
	var i int
	if w := h.schedule(); w != nil && w.err == nil {
		i = w.pick(h.backends)
	} else {
		view := append([]sdk.Backend(nil), h.backends...) // the strategy must not keep it
		var err error
		if i, err = h.s.Pick(req, view); err != nil {
			return "", err
		}
		if i < 0 || i >= len(h.backends) {
			h.t.Fatalf("Pick returned index %d for %d backends", i, len(h.backends))
		}
	}
	h.backends[i].Inflight++
	return h.backends[i].URL, nil
}

// Schedule asks an sdk.Scheduler for the schedule of the current backends, as the
// load balancer does when they change, and fails the test on one the load balancer
// would refuse. Pick walks it from its start until SetBackends or the next Schedule.
// An error means the strategy declined: Pick then asks it for each request.
func (h *Harness) Schedule() (sdk.Schedule, error) {
	h.t.Helper()
	sc, ok := h.s.(sdk.Scheduler)
	if !ok {
		h.t.Fatalf("strategy %T does not implement sdk.Scheduler", h.s)
	}
	view := append([]sdk.Backend(nil), h.backends...)
	s, err := sc.Schedule(view)
	h.walk = &walk{err: err}
	if err != nil {
		return s, err
	}
	if len(s.Order) > sdk.MaxOrder {
		h.t.Fatalf("Schedule returned %d entries, more than sdk.MaxOrder (%d)", len(s.Order), sdk.MaxOrder)
	}
	for _, i := range s.Order {
		if i < 0 || i >= len(h.backends) {
			h.t.Fatalf("Schedule returned index %d for %d backends", i, len(h.backends))
		}
	}
	h.walk.order, h.walk.least = append([]int(nil), s.Order...), s.Least
	if len(h.walk.order) == 0 { // every backend in turn
		for i := range h.backends {
			h.walk.order = append(h.walk.order, i)
		}
	}
	return s, nil
}

// schedule returns the walk of an sdk.Scheduler, asking for it if needed; nil for
// other strategies and when there are no backends.
func (h *Harness) schedule() *walk {
	h.t.Helper()
	if _, ok := h.s.(sdk.Scheduler); !ok || len(h.backends) == 0 {
		return nil
	}
	if h.walk == nil {
		_, _ = h.Schedule()
	}
	return h.walk
}

// Done ends a request on the backend with url: it leaves the in-flight count, and an
// sdk.Observer strategy observes the outcome.
func (h *Harness) Done(url string, status int, latency time.Duration) {
	for i := range h.backends {
		if h.backends[i].URL == url && h.backends[i].Inflight > 0 {
			h.backends[i].Inflight--
		}
	}
	if o, ok := h.s.(sdk.Observer); ok {
		o.Observe(sdk.Outcome{URL: url, Status: status, Latency: latency})
	}
}

// Spread makes n picks for req, each finished (Done with 200) before the next, and
// counts them by backend URL.
func (h *Harness) Spread(req *sdk.Request, n int) map[string]int {
	h.t.Helper()
	counts := map[string]int{}
	for range n {
		url, err := h.Pick(req)
		if err != nil {
			h.t.Fatalf("Pick = %v", err)
		}
		counts[url]++
		h.Done(url, 200, time.Millisecond)
	}
	return counts
}

// pick returns the index of the next backend on the walk, as sdk.Schedule says.
func (w *walk) pick(bs []sdk.Backend) int {
	n := w.next
	w.next++
	if !w.least {
		return w.order[n%len(w.order)]
	}
	var tied []int
	bestLoad, bestWeight := 0, 0
	for _, i := range w.order {
		load, weight := bs[i].Inflight+max(bs[i].QueueLength, 0), max(bs[i].Weight, 1)
		switch l, r := load*bestWeight, bestLoad*weight; {
		case tied == nil || l < r:
			tied, bestLoad, bestWeight = append(tied[:0], i), load, weight
		case l == r:
			tied = append(tied, i)
		}
	}
	return tied[n%len(tied)]
}
