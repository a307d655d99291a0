package strategy

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
)

// Endpoint is where another process of the load balancer reaches a running plugin:
// its pick channel's socket and what the plugin announced when it started.
type Endpoint struct {
	Name      string   `json:"name"`
	Socket    string   `json:"socket"`
	Headers   []string `json:"headers,omitempty"`
	Observes  bool     `json:"observes,omitempty"`
	Schedules bool     `json:"schedules,omitempty"`
}

// Endpoint returns where the running plugin takes more pick channels; false while
// it is down.
func (p *Plugin) Endpoint() (Endpoint, bool) {
	ch := p.ch.Load()
	if ch == nil || ch.sock == "" {
		return Endpoint{}, false
	}
	return Endpoint{Name: p.spec.Name, Socket: ch.sock, Headers: ch.headers, Observes: ch.observes, Schedules: ch.schedules}, true
}

// Attach returns a Plugin for a data-plane process: it picks over a pick channel of
// its own to the plugin process that the control plane runs (see Connect), and
// falls back to the built-in pick while it has none. Its figures are counted in c
// (nil: its own memory).
func Attach(name string, log hclog.Logger, c *shm.Strategy) *Plugin {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	_, cancel := context.WithCancel(context.Background())
	p := &Plugin{spec: Spec{Name: name}, log: log, fallback: NewLocal(name, leastconn.New()), cancel: cancel, done: make(chan struct{}), attached: true}
	close(p.done)
	p.count(c)
	p.setState(StateStarting)
	return p
}

// Connect opens a pick channel to the plugin at ep, in place of the one an
// attached Plugin had.
func (p *Plugin) Connect(ep Endpoint) error {
	if !p.attached {
		return errors.New("strategy: Connect on a plugin this process runs")
	}
	conn, err := net.Dial("unix", ep.Socket)
	if err != nil {
		return fmt.Errorf("strategy %q: connecting the pick channel: %w", ep.Name, err)
	}
	ch := newChannel(conn, ep.Headers, ep.Observes, ep.Schedules)
	ch.sock = ep.Socket
	if old := p.ch.Swap(ch); old != nil {
		old.die(errors.New("replaced"))
	}
	p.setState(StateRunning)
	go func() {
		<-ch.dead
		if p.ch.CompareAndSwap(ch, nil) {
			p.setState(StateRestarting)
		}
	}()
	return nil
}
