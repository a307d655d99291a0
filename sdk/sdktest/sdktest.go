// Package sdktest lets a strategy's author test it without a proxy or a subprocess:
// it drives a Strategy over scripted backends as the load balancer would, keeping
// in-flight counts, and reports where the requests went.
//
//	func TestMyStrategy(t *testing.T) {
//		h := sdktest.New(t, mystrategy.New(), sdktest.Backends("http://a:1", "http://b:1")...)
//		counts := h.Spread(&sdk.Request{Method: "GET", Path: "/"}, 100)
//		if counts["http://a:1"] != 50 { ... }
//	}
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
}

// New returns a harness for s over backends. If s is an sdk.Configurer it is
// configured with no options (the JSON null, as the load balancer does); use
// Configure for others.
func New(t testing.TB, s sdk.Strategy, backends ...sdk.Backend) *Harness {
	t.Helper()
	h := &Harness{t: t, s: s}
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

// SetBackends replaces the candidate backends, as a health change or a config edit does.
func (h *Harness) SetBackends(backends ...sdk.Backend) {
	h.backends = append([]sdk.Backend(nil), backends...)
}

// Backends returns the candidates as the strategy sees them now.
func (h *Harness) Backends() []sdk.Backend { return h.backends }

// Pick asks the strategy for a backend for req and, as the proxy would, counts the
// request in flight on it. It fails the test on an index out of range.
func (h *Harness) Pick(req *sdk.Request) (string, error) {
	h.t.Helper()
	if req == nil {
		req = &sdk.Request{Method: "GET", Path: "/"}
	}
	view := append([]sdk.Backend(nil), h.backends...) // the strategy must not keep it
	i, err := h.s.Pick(req, view)
	if err != nil {
		return "", err
	}
	if i < 0 || i >= len(h.backends) {
		h.t.Fatalf("Pick returned index %d for %d backends", i, len(h.backends))
	}
	h.backends[i].Inflight++
	return h.backends[i].URL, nil
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
