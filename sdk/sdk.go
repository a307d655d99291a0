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
// names request headers the strategy wants to see. Lines written with the standard
// log package appear in the load balancer's log, marked with the strategy's name.
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
// The core calls Pick, Observe and Configure from one goroutine at a time, so a
// strategy needs no locks of its own. backends is never empty, and neither it nor req
// may be retained after Pick returns.
type Strategy interface {
	Pick(req *Request, backends []Backend) (int, error)
}

// Request describes the request being balanced.
type Request struct {
	Method, Host, Path, RemoteAddr string
	// Headers holds only the headers the strategy declared (see Headerer).
	Headers map[string]string
}

// Backend is one candidate backend as the strategy sees it.
type Backend struct {
	URL         string        // as written in config.json; stable identity
	Weight      int           // from config.json, at least 1
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
