// Package nethttp is the front on Go's net/http server: a goroutine per client
// connection, for where the event loop does not serve (systems without it, and next
// TLS listeners and HTTP/2). Requests are read through package h1 first (see gate),
// so it refuses what the event loop refuses; the rules of each request are package
// exchange's, and backends are reached through net/http's transport, http and https
// alike.
package nethttp

import (
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/http2"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// Timeouts bound each stage of a request (see config.Timeouts).
type Timeouts struct {
	Connect, ResponseHeader, Idle, ReadHeader, BodyIdle time.Duration
}

// Config builds a Front.
type Config struct {
	// Listener is where clients connect; the Front closes it at Shutdown.
	Listener net.Listener
	// Proxy gives the worker pool, the backend set, the live settings and picker,
	// and takes each request's outcome.
	Proxy *exchange.Proxy
	// Status returns the status JSON answered on the status path.
	Status   func() []byte
	Limits   h1.Limits
	Timeouts Timeouts
	Log      hclog.Logger
	// TLS, when set, terminates TLS on the listener with this configuration (its
	// certificates, minimum version and ALPN protocols: "h2" serves HTTP/2).
	TLS *tls.Config
	// H2C also serves HTTP/2 without TLS to clients that open with its preface.
	H2C bool
	// RedirectHTTPS answers every request with 308 to the same host and URI on
	// https.
	RedirectHTTPS bool
	// Handshake hears each TLS handshake's result (nil: nobody).
	Handshake func(ok bool)
	// Challenge, when set, sees each request first and answers those it reports
	// it answered: an ACME CA's http-01 validation requests (RFC 8555 section
	// 8.3), which neither the routes nor a redirect to https may take.
	Challenge func(http.ResponseWriter, *http.Request) bool
}

// Front serves clients on a net/http server until Shutdown.
type Front struct {
	cfg    Config
	server *http.Server
	// byTLS holds the transports to backends (*transports), by the
	// *exchange.BackendTLS of the pools they serve.
	byTLS   sync.Map
	h2c     *backend.H2C   // h2c:// backends (HTTP/2 without TLS), multiplexed
	h2      *http2.Server  // HTTP/2 to clients (TLS with h2 by ALPN, or h2c)
	h2conns sync.WaitGroup // the HTTP/2 connections being served
	h2mu    sync.Mutex
	h2open  map[net.Conn]struct{} // the same, to close when a drain runs out of time
	// h2closing is set once Shutdown began: no HTTP/2 connection starts after it.
	h2closing bool
	done      chan struct{}
}

// connKey finds a request's connection in its context.
type connKey struct{}

// conn is one client connection's state, shared by its requests.
type conn struct {
	g  *gate
	ip []byte // the client's address, as X-Forwarded-For and the log write it
	// requests counts the requests read from it so far: HTTP/2 reads them
	// concurrently.
	requests atomic.Int64
	tls      bool // it came over TLS
}

// clientIP is c's remote address as X-Forwarded-For and the log write it.
func clientIP(c net.Conn) []byte {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap().AppendTo(nil)
	}
	return nil
}

// Serve serves cfg.Listener's clients until Shutdown.
func Serve(cfg Config) *Front {
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	f := &Front{cfg: cfg, done: make(chan struct{}), h2open: map[net.Conn]struct{}{}}
	f.h2c = f.h2cTransport()
	f.server = &http.Server{
		// OPTIONS * is a request for the backend, as any other.
		DisableGeneralOptionsHandler: true,
		Handler:                      f,
		ReadHeaderTimeout:            cfg.Timeouts.ReadHeader,
		IdleTimeout:                  cfg.Timeouts.Idle,
		// h1 bounds the head first (see gate); this is the server's own bound, set
		// above it so that it never answers first.
		MaxHeaderBytes: 2*cfg.Limits.MaxHeaderBytes + 4096,
		ErrorLog:       log.New(hclogWriter{cfg.Log.Named("http")}, "", 0),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			st := &conn{ip: clientIP(c)}
			if g, ok := c.(*gate); ok {
				st.g, st.tls = g, g.tls
			}
			return context.WithValue(ctx, connKey{}, st)
		},
	}
	f.server.SetKeepAlivesEnabled(true)
	f.h2 = f.h2Server()
	go func() {
		defer close(f.done)
		if err := f.server.Serve(newAcceptor(f)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			cfg.Log.Error("client listener stopped", "addr", cfg.Listener.Addr().String(), "error", err)
		}
	}()
	return f
}

// Addr is the address clients connect to.
func (f *Front) Addr() net.Addr { return f.cfg.Listener.Addr() }

// Shutdown stops accepting, closes idle connections, and lets requests in flight
// finish until ctx ends, when it closes what is left.
func (f *Front) Shutdown(ctx context.Context) error {
	f.h2mu.Lock()
	f.h2closing = true
	f.h2mu.Unlock()
	err := f.server.Shutdown(ctx) // HTTP/2 connections get GOAWAY (http2.ConfigureServer)
	if err != nil {
		_ = f.server.Close()
	}
	<-f.done
	h2done := make(chan struct{})
	go func() { f.h2conns.Wait(); close(h2done) }()
	select {
	case <-h2done:
	case <-ctx.Done():
		err = ctx.Err()
		// What HTTP/2 streams are left are cut off, as HTTP/1.1's are.
		f.h2mu.Lock()
		for c := range f.h2open {
			_ = c.Close()
		}
		f.h2mu.Unlock()
	}
	f.byTLS.Range(func(_, v any) bool {
		v.(*transports).pooled.CloseIdleConnections()
		return true
	})
	f.h2c.CloseIdleConnections()
	return err
}

// handshake counts a TLS handshake's result.
func (f *Front) handshake(ok bool) {
	if f.cfg.Handshake != nil {
		f.cfg.Handshake(ok)
	}
}

// refused counts, and logs, a request the gate answered itself.
func (f *Front) refused(g *gate, status int) {
	var ip []byte
	if ap, err := netip.ParseAddrPort(g.RemoteAddr().String()); err == nil {
		ip = ap.Addr().Unmap().AppendTo(nil)
	}
	f.cfg.Proxy.Finish(f.cfg.Proxy.OwnAnswers(), &exchange.Entry{Start: time.Now(), Client: ip, Status: status})
}

// hclogWriter sends the server's own messages (a failed TLS handshake, a panic) to
// the structured log, one line each.
type hclogWriter struct{ log hclog.Logger }

func (w hclogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if len(msg) > 0 && msg[len(msg)-1] == '\n' {
		msg = msg[:len(msg)-1]
	}
	w.log.Debug(msg)
	return len(p), nil
}
