package lb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/valyala/fasthttp"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/proxy"
	"github.com/switchyard-lb/switchyard/core/status"
)

// front is the client listener with the server that reads requests from it. A change
// of address or of the client-side limits starts a new front beside the old one and
// then drains the old one.
type front struct {
	ln     net.Listener     // fasthttp engine
	server *fasthttp.Server // fasthttp engine
	plane  dataPlane        // eventloop engine
	key    frontKey
	done   chan struct{} // closed when Serve returns
}

// dataPlane is a data plane other than the fasthttp server: the event loops.
type dataPlane interface {
	Addr() net.Addr
	Shutdown(ctx context.Context) error
}

// addr is where clients connect.
func (fr *front) addr() net.Addr {
	if fr.plane != nil {
		return fr.plane.Addr()
	}
	return fr.ln.Addr()
}

// shutdown stops accepting and lets requests finish until ctx is done.
func (fr *front) shutdown(ctx context.Context) error {
	if fr.plane != nil {
		return fr.plane.Shutdown(ctx)
	}
	return fr.server.ShutdownWithContext(ctx)
}

// frontKey is what a front is built from: when it changes, the front is replaced.
type frontKey struct {
	addr                       string
	readHeader, idle, bodyIdle time.Duration
	maxHeaderBytes             int
	engine                     string
	processes                  int
	// The eventloop engine's own: it reads them when it starts.
	connect, responseHeader time.Duration
	maxHeaders              int
}

func frontKeyOf(cfg *config.Config) frontKey {
	lbc := cfg.LoadBalancer
	k := frontKey{
		addr:       net.JoinHostPort(lbc.Host, strconv.Itoa(int(lbc.Port))),
		readHeader: lbc.Timeouts.ReadHeader.D(), idle: lbc.Timeouts.Idle.D(), bodyIdle: lbc.Timeouts.BodyIdle.D(),
		maxHeaderBytes: lbc.Limits.MaxHeaderBytes, engine: engineOf(cfg), processes: processesOf(cfg),
	}
	if k.engine == config.EngineEventLoop {
		k.connect, k.responseHeader = lbc.Timeouts.Connect.D(), lbc.Timeouts.ResponseHeader.D()
		k.maxHeaders = lbc.Limits.MaxHeaders
	}
	return k
}

// newFront listens as cfg says and serves l's handler there. exclusive refuses a port
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
		done := make(chan struct{})
		close(done)
		return &front{plane: plane, key: key, done: done}, nil
	}
	ln, err := listen(addr, exclusive)
	if err != nil {
		return nil, fmt.Errorf("listening for clients: %w", err)
	}
	fr := &front{ln: ln, key: key, done: make(chan struct{}), server: &fasthttp.Server{
		Handler:      l.handler.ServeHTTP,
		ErrorHandler: proxy.ServerError,
		// Headers are read within read_header; bodies and writes time out only when
		// idle (see proxy.Listener); keep-alive connections close after idle.
		ReadTimeout:                  key.readHeader,
		IdleTimeout:                  key.idle,
		ReadBufferSize:               key.maxHeaderBytes,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultDate:                true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		// Idle keep-alive connections give back their buffers: 10,000 of them fit
		// in about 100 MiB instead of several hundred.
		ReduceMemoryUsage: true,
		Logger:            fasthttpLogger{l.log.Named("http")},
	}}
	go func() {
		defer close(fr.done)
		if err := fr.server.Serve(&proxy.Listener{Listener: ln, Idle: key.bodyIdle}); err != nil {
			l.log.Error("client listener stopped", "addr", ln.Addr().String(), "error", err)
		}
	}()
	return fr, nil
}

// engineOf is the data plane that serves cfg: the one it names, else the eventloop
// engine where it runs and every backend speaks plain http, else fasthttp.
func engineOf(cfg *config.Config) string {
	if e := cfg.LoadBalancer.Engine; e != "" {
		return e
	}
	if !eventLoopRuns {
		return config.EngineFastHTTP
	}
	for _, b := range cfg.Servers.Backends {
		if strings.HasPrefix(b.URL, "https:") {
			return config.EngineFastHTTP
		}
	}
	if d := cfg.Servers.Discovery; d != nil && d.Scheme == "https" {
		return config.EngineFastHTTP
	}
	return config.EngineEventLoop
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
	<-fr.done
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
