// Package sdk is what a strategy plugin author imports: the Strategy interface, the
// types a strategy sees, the optional interfaces it may implement, and Serve.
//
// A strategy answers one question per request: which of the healthy backends should
// serve it. The load balancer hands it a description of the request and the current
// candidates with their live figures (weight, requests in flight, the backend's own
// queue, recent latency and error rate); the strategy returns an index.
//
// # From zero to a running strategy
//
// A strategy is a package main that calls Serve with a value implementing Strategy:
//
//	package main
//
//	import "github.com/switchyard-lb/switchyard/sdk"
//
//	type first struct{}
//
//	func (first) Pick(_ *sdk.Request, bs []sdk.Backend) (int, error) { return 0, nil }
//
//	func main() { sdk.Serve(first{}) }
//
// Build it (go build -o bin/first .), and name it in config.json:
//
//	"load_balancer": {"strategy": "first"},
//	"plugins": {"first": {"command": "./bin/first", "options": {}}}
//
// The load balancer starts the program as a subprocess, supervises it (a crash
// restarts it), and asks it for each request. A strategy that crashes, hangs or
// answers an index out of range costs no request: the load balancer picks with its
// built-in least-connections strategy meanwhile, and says so in its log and status.
//
// Optional interfaces, found by type assertion: Configurer receives the plugin's
// `options` from config.json, Observer receives each request's outcome, Headerer
// names request headers the strategy wants to see, and Scheduler lets a strategy
// whose picks depend only on the backends (round robin, weighted round robin, least
// connections) hand the load balancer a Schedule once per change of the candidates
// instead of answering each request. Lines written with the standard log package
// appear in the load balancer's log, marked with the strategy's name.
//
// # Schedules
//
// Asking a plugin process costs each request a round trip to it. A Scheduler is
// asked only when the candidates change (a backend joins or leaves them, a weight
// changes); the load balancer then walks the Schedule itself for each request, so a
// pick costs what an in-process one does:
//
//	func (s *rr) Schedule(bs []sdk.Backend) (sdk.Schedule, error) {
//		return sdk.Schedule{}, nil // every backend in turn
//	}
//
// Pick is still called while a new schedule is on its way, and for each request
// when Schedule returns an error, so a Scheduler implements both.
//
// Package sdktest drives a strategy in a plain Go test, without a load balancer.
package sdk

import (
	"encoding/json"
	"time"
)

// Strategy picks the backend for one request: an index into backends, which holds
// only healthy candidates. An error means "no backend suits this request": the client
// gets 503.
//
// The core calls Pick, Observe, Configure and Schedule from one goroutine at a
// time, so a strategy needs no locks of its own. backends is never empty, and
// neither it nor req may be retained after Pick returns.
type Strategy interface {
	Pick(req *Request, backends []Backend) (int, error)
}

// Request describes the request being balanced.
type Request struct {
	Method, Host, Path, RemoteAddr string
	// Headers holds only the headers the strategy declared (see Headerer).
	Headers map[string]string
	// Pool names the pool the request was routed to: a key of config.json's
	// `pools`, or "default" (the pool of `servers`) when no route matched. The load
	// balancer runs one instance of a strategy per pool that names it, so a
	// strategy sees one pool all its life; it is empty only under a load balancer
	// older than pools.
	Pool string
}

// Backend is one candidate backend as the strategy sees it.
type Backend struct {
	URL         string        // as written in config.json; stable identity
	Weight      int           // from config.json or set at run time; at least 1 (weight 0: not a candidate)
	Inflight    int           // requests this proxy has open on it now
	QueueLength int           // the backend's own reported queue, -1 when unknown
	Latency     time.Duration // recent latency (moving average)
	ErrorRate   float64       // recent share of failed requests, 0..1
}

// Outcome is the result of one proxied request, reported to an Observer.
type Outcome struct {
	URL     string        // the backend that served
	Status  int           // HTTP status, 0 when no response came
	Latency time.Duration // time from sending the request to the end of the response
	Err     string        // transport error, "" when none
}

// Configurer is implemented by strategies that take options: Configure receives the
// `options` of the strategy's entry in config.json as written, or the JSON null when
// there are none, before the first Pick.
type Configurer interface {
	Configure(options json.RawMessage) error
}

// Observer is implemented by strategies that adapt to results: Observe receives
// each request's outcome.
type Observer interface {
	Observe(o Outcome)
}

// Headerer is implemented by strategies that look at request headers: Headers names
// the headers to copy into Request.Headers. It is asked once, when the strategy starts.
type Headerer interface {
	Headers() []string
}

// Scheduler is implemented by strategies whose picks depend only on the backends,
// never on the request. The load balancer asks Schedule for a Schedule when the
// candidates change (a backend joins or leaves them, a weight changes), and walks it
// itself for each request until the next change, without calling Pick.
//
// backends is as Pick would see it at that moment (its live figures included) and
// must not be retained. An error means the strategy cannot schedule these backends:
// the load balancer asks Pick for each request until they change. Pick also answers
// the requests that arrive while a new schedule is on its way.
type Scheduler interface {
	Schedule(backends []Backend) (Schedule, error)
}

// Schedule is how the load balancer picks among the backends given to Schedule,
// until the candidates change.
//
// Each request takes the next position in Order, wrapping around; concurrent
// requests take distinct positions. A request that already failed on a backend (a
// retry) skips the entries of that backend.
type Schedule struct {
	// Order lists indexes into the backends, one entry per request, for example
	// smooth weighted round robin's sequence over one cycle. Empty means every
	// backend in turn. At most MaxOrder entries; an index out of range is a bad
	// answer (the load balancer picks with its built-in strategy instead).
	Order []int
	// Least makes each request take, among the backends of Order, the one with the
	// fewest (in-flight + reported queue length) / weight at that moment (an unknown
	// queue counts 0), as leastconn does. Equal ones take turns: the request at
	// position n takes the (n mod ties)-th of them in Order.
	Least bool
}

// MaxOrder is the longest Schedule.Order the load balancer accepts; a longer one
// counts as an error from Schedule.
const MaxOrder = 1 << 18
