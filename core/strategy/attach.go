package strategy

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
)

// Endpoint is where another process of the load balancer reaches a running plugin:
// its pick channel's socket and what the plugin announced when it started.
type Endpoint struct {
	Name      string   `json:"name"`
	Pool      string   `json:"pool,omitempty"` // the pool it picks for (see Spec.Pool)
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
	return Endpoint{Name: p.spec.Name, Pool: p.spec.Pool, Socket: ch.sock, Headers: ch.headers, Observes: ch.observes, Schedules: ch.schedules}, true
}

// Attach is AttachFor the pool "default".
func Attach(name string, log hclog.Logger, c *shm.Strategy) *Plugin {
	return AttachFor(config.DefaultPool, name, log, c)
}

// AttachFor returns a Plugin for a data-plane process, for the requests of pool (""
// means "default"): it picks over a pick channel of its own to the plugin process
// that the control plane runs for pool (see Connect), and falls back to the
// built-in pick while it has none. Its figures are counted in c (nil: its own
// memory).
func AttachFor(pool, name string, log hclog.Logger, c *shm.Strategy) *Plugin {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	_, cancel := context.WithCancel(context.Background())
	spec := Spec{Name: name, Pool: poolName(pool)}
	p := &Plugin{spec: spec, log: log, fallback: NewLocalFor(spec.Pool, name, leastconn.New()), cancel: cancel, done: make(chan struct{}), attached: true}
	close(p.done)
	p.count(c)
	p.setState(StateStarting)
	return p
}

// Connect opens a pick channel to the plugin at ep, in place of the one an
// attached Plugin had. The plugin must serve p's pool: its strategy names that
// pool to each pick, whichever channel the pick comes by.
func (p *Plugin) Connect(ep Endpoint) error {
	if !p.attached {
		return errors.New("strategy: Connect on a plugin this process runs")
	}
	if ep.Pool != "" && ep.Pool != p.spec.Pool {
		return fmt.Errorf("strategy %q: the plugin at %s picks for pool %q, not %q", ep.Name, ep.Socket, ep.Pool, p.spec.Pool)
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
