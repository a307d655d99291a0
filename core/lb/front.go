package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/h1"
	"github.com/switchyard-lb/switchyard/core/nethttp"
	"github.com/switchyard-lb/switchyard/core/status"
)

// front is the client listener with the front that serves it (DESIGN section 10.3):
// the event loop, in this process or in data-plane processes, or the net/http
// server. A change of address, of front or of the client-side limits starts a new
// front beside the old one and then drains the old one.
type front struct {
	plane dataPlane
	key   frontKey
}

// dataPlane is a running front: the event loops, or the net/http server.
type dataPlane interface {
	Addr() net.Addr
	Shutdown(ctx context.Context) error
}

// addr is where clients connect.
func (fr *front) addr() net.Addr { return fr.plane.Addr() }

// shutdown stops accepting and lets requests finish until ctx is done.
func (fr *front) shutdown(ctx context.Context) error { return fr.plane.Shutdown(ctx) }

// frontKey is what a front is built from: when it changes, the front is replaced.
type frontKey struct {
	addr                       string
	readHeader, idle, bodyIdle time.Duration
	maxHeaderBytes, maxHeaders int
	engine                     string
	processes                  int
	connect, responseHeader    time.Duration
}

func frontKeyOf(cfg *config.Config) frontKey {
	lbc := cfg.LoadBalancer
	return frontKey{
		addr:       net.JoinHostPort(lbc.Host, strconv.Itoa(int(lbc.Port))),
		readHeader: lbc.Timeouts.ReadHeader.D(), idle: lbc.Timeouts.Idle.D(), bodyIdle: lbc.Timeouts.BodyIdle.D(),
		maxHeaderBytes: lbc.Limits.MaxHeaderBytes, maxHeaders: lbc.Limits.MaxHeaders,
		engine: engineOf(cfg), processes: processesOf(cfg),
		connect: lbc.Timeouts.Connect.D(), responseHeader: lbc.Timeouts.ResponseHeader.D(),
	}
}

// newFront listens as cfg says and serves l's proxy there. exclusive refuses a port
// that another process holds; a replacement front on the port this one holds is not
// exclusive (the two share it through SO_REUSEPORT until the old one closes). listen
// is per system: see listen_reuseport.go, and listen_other.go for systems without
// SO_REUSEPORT (Windows), where a replacement on the same port is refused.
func (l *LB) newFront(cfg *config.Config, exclusive bool) (*front, error) {
	key := frontKeyOf(cfg)
	addr := key.addr
	if !exclusive && l.front != nil {
		addr = l.front.addr().String() // the port in use, even if config.json says 0
	}
	if key.engine == config.EngineEventLoop {
		if exclusive {
			var err error
			if addr, err = claim(addr); err != nil {
				return nil, fmt.Errorf("listening for clients: %w", err)
			}
		}
		plane, err := l.startEventLoop(cfg, addr)
		if err != nil {
			return nil, err
		}
		return &front{plane: plane, key: key}, nil
	}
	ln, err := listen(addr, exclusive)
	if err != nil {
		return nil, fmt.Errorf("listening for clients: %w", err)
	}
	lbc := cfg.LoadBalancer
	t := lbc.Timeouts
	f := nethttp.Serve(nethttp.Config{
		Listener: ln, Proxy: l.proxy, Status: l.source.JSON,
		Limits: h1.Limits{MaxHeaderBytes: lbc.Limits.MaxHeaderBytes, MaxHeaders: lbc.Limits.MaxHeaders},
		Timeouts: nethttp.Timeouts{Connect: t.Connect.D(), ResponseHeader: t.ResponseHeader.D(), Idle: t.Idle.D(),
			ReadHeader: t.ReadHeader.D(), BodyIdle: t.BodyIdle.D()},
		Log: l.log.Named("http"),
	})
	return &front{plane: f, key: key}, nil
}

// engineOf is the front that serves cfg's client listener: the one it names, else
// the event loop where it runs, else nethttp. Backends play no part: either front
// reaches http and https backends.
func engineOf(cfg *config.Config) string {
	if e := cfg.LoadBalancer.Engine; e != "" {
		return e
	}
	if !eventLoopRuns {
		return config.EngineNetHTTP
	}
	return config.EngineEventLoop
}

// showListeners puts the client listeners in the status, load_balancer_port's first.
// l.applyMu must be held.
func (l *LB) showListeners() {
	ls := []status.Listener{{Addr: l.front.addr().String(), Front: l.front.key.engine}}
	for _, x := range l.extras {
		ls = append(ls, x.status())
	}
	l.source.SetListeners(ls)
}

// claim checks, with a plain bind, that no other process holds addr's port
// (SO_REUSEPORT alone would share it silently), and returns the address with the
// port chosen when addr's was 0.
func claim(addr string) (string, error) {
	probe, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	defer probe.Close()
	return probe.Addr().String(), nil
}

// errNoHandOver is listen's refusal of a replacement front on the port the running
// one holds, on systems without SO_REUSEPORT (handOver false: see listen_other.go).
var errNoHandOver = errors.New("this system has no SO_REUSEPORT, so the client listener cannot be " +
	"replaced on the port it holds: restart switchyard to change load_balancer.timeouts " +
	"(read_header, idle, body_idle) or load_balancer.limits.max_header_bytes")

// drain stops fr accepting and lets its requests finish within timeout.
func (fr *front) drain(timeout time.Duration, log hclog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := fr.shutdown(ctx); err != nil {
		log.Warn("old client listener: requests cut off after the drain timeout", "addr", fr.addr().String(), "error", err)
	}
	log.Info("old client listener closed", "addr", fr.addr().String())
}

// admin is the admin HTTP server.
type admin struct {
	ln     net.Listener
	server *http.Server
}

func newAdmin(addr string, src *status.Source, log hclog.Logger) (*admin, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on admin_addr: %w", err)
	}
	a := &admin{ln: ln, server: &http.Server{Handler: status.AdminHandler(src), ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := a.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin listener stopped", "error", err)
		}
	}()
	return a, nil
}
