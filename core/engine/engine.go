//go:build linux || darwin || freebsd || netbsd || openbsd

// Package engine is the event-loop data plane: HTTP/1.1 proxying on single-goroutine
// event loops (package evloop), with the framing of package h1. Each loop owns its
// client connections, the backend connections they use and its own listening socket
// on the shared port (SO_REUSEPORT), so a request costs no goroutine hand-off: in the
// common case one read and one write on each side.
//
// The rules of one request that every front shares (header rewriting, retries, the
// proxy's own answers, the outcome record) are package exchange's.
package engine

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/http2"

	"github.com/switchyard-lb/switchyard/core/evloop"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/pool"
)

// Timeouts bound each stage of a request (see config.Timeouts).
type Timeouts struct {
	Connect, ResponseHeader, Idle, ReadHeader, BodyIdle time.Duration
}

// Config builds an Engine.
type Config struct {
	// Addr is the client address, host:port. Every loop binds it with SO_REUSEPORT, so
	// a replacement data plane joins the port the running one holds; the caller
	// makes sure no other process holds it.
	Addr string
	// Loops is the number of event loops (default 1).
	Loops int
	// Proxy gives the worker pool, the backend set, the live settings and picker,
	// and takes each request's outcome.
	Proxy *exchange.Proxy
	// Status asks for the status JSON answered on the status path. It calls answer
	// exactly once with it, from any goroutine, during the call or later; the loop
	// serves its other connections meanwhile.
	Status   func(answer func(body []byte))
	Limits   h1.Limits
	Timeouts Timeouts
	Log      hclog.Logger
}

// Engine serves clients on event loops until Shutdown.
type Engine struct {
	cfg      Config
	pool     *pool.Pool       // cfg.Proxy's
	h2c      *http2.Transport // starts the HTTP/2 connections to h2c backends (h2c.go)
	addr     *net.TCPAddr
	loops    []*loop
	wg       sync.WaitGroup
	draining atomic.Bool
}

// Start listens and serves cfg.
func Start(cfg Config) (*Engine, error) {
	if cfg.Loops < 1 {
		cfg.Loops = 1
	}
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	e := &Engine{cfg: cfg, pool: cfg.Proxy.Pool(), h2c: newH2CTransport(cfg.Timeouts)}
	addr := cfg.Addr
	for range cfg.Loops {
		l, err := e.newLoop(addr)
		if err != nil {
			e.closeLoops()
			return nil, err
		}
		addr = l.addr.String() // a port 0 is chosen by the first loop
		e.addr = l.addr
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Go(func() {
			if err := l.ev.Run(); err != nil && !errors.Is(err, evloop.ErrClosed) {
				cfg.Log.Error("event loop stopped", "error", err)
			}
			l.closeAll()
		})
	}
	return e, nil
}

// Addr is the address clients connect to.
func (e *Engine) Addr() net.Addr { return e.addr }

// Shutdown stops accepting, closes idle connections, lets requests in flight finish
// (closing each connection after its answer), and returns when all are done or ctx
// ends, when it closes what is left.
func (e *Engine) Shutdown(ctx context.Context) error {
	e.draining.Store(true)
	for _, l := range e.loops {
		l.ev.Execute(l.drain)
	}
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			e.closeLoops()
			<-done
			return ctx.Err()
		case <-tick.C:
			busy := false
			for _, l := range e.loops {
				busy = busy || l.clients.Load() > 0
			}
			if !busy {
				e.closeLoops()
			}
		}
	}
}

func (e *Engine) closeLoops() {
	for _, l := range e.loops {
		_ = l.ev.Close()
	}
}
