package nethttp

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/exchange"
)

// maxIdlePerBackend bounds the idle connections kept to one backend, as the event
// loop bounds its own per loop.
const maxIdlePerBackend = 256

// transports are the net/http transports to the backends of the pools that reach
// https backends with one BackendTLS: pools that verify differently share no pooled
// connection.
type transports struct {
	pooled *http.Transport // keep-alive connections to backends
	fresh  *http.Transport // a connection per request (load_balancer.reuse "safe")
}

// transportsFor returns the transports of the pools whose https backends are
// reached with t.
func (f *Front) transportsFor(t *exchange.BackendTLS) *transports {
	if v, ok := f.byTLS.Load(t); ok {
		return v.(*transports)
	}
	v, loaded := f.byTLS.LoadOrStore(t, &transports{pooled: f.transport(true, t), fresh: f.transport(false, t)})
	if !loaded {
		f.pruneTransports()
	}
	return v.(*transports)
}

// pruneTransports lets go of the transports of TLS settings that no pool has any
// more (an edit changed them): their idle connections close now, and those still
// carrying a request close once it is done, after idle at the most.
func (f *Front) pruneTransports() {
	inUse := map[*exchange.BackendTLS]bool{}
	for _, u := range f.cfg.Proxy.Table().Upstreams() {
		inUse[u.TLS()] = true
	}
	f.byTLS.Range(func(k, v any) bool {
		if !inUse[k.(*exchange.BackendTLS)] {
			f.byTLS.Delete(k)
			v.(*transports).pooled.CloseIdleConnections()
		}
		return true
	})
}

// transport returns the net/http transport to backends of pools reaching https
// backends with bt: with keep-alive (pooled), or a connection per request that
// closes after its answer.
func (f *Front) transport(pooled bool, bt *exchange.BackendTLS) *http.Transport {
	t := f.cfg.Timeouts
	d := &net.Dialer{Timeout: t.Connect, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// A backend that stalls in the middle of an answer's body, or of
			// taking a request body, fails after body_idle (nginx's
			// proxy_read_timeout); its head is the transport's to time
			// (response_header).
			return newAnswerGate(&backend.IdleConn{Conn: c, WriteIdle: t.BodyIdle}, f.cfg.Limits, t.BodyIdle, f.staleCounter("http://"+addr)), nil
		},
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := f.dialTLS(ctx, addr, pooled, bt)
			if err != nil {
				return nil, err
			}
			if c.ConnectionState().NegotiatedProtocol == "h2" {
				return c, nil // the transport's HTTP/2 reads it: it frames its own answers
			}
			return newAnswerGate(&backend.IdleConn{Conn: c, WriteIdle: t.BodyIdle}, f.cfg.Limits, t.BodyIdle, f.staleCounter("https://"+addr)), nil
		},
		// An https backend that offers h2 by ALPN is spoken to in HTTP/2 (on pooled
		// connections: HTTP/2 multiplexes, so a connection of its own per request
		// would only cost a handshake).
		ForceAttemptHTTP2:      pooled,
		DisableKeepAlives:      !pooled,
		DisableCompression:     true, // the body passes as the backend sent it
		MaxIdleConns:           0,
		MaxIdleConnsPerHost:    maxIdlePerBackend,
		IdleConnTimeout:        t.Idle,
		ResponseHeaderTimeout:  t.ResponseHeader,
		MaxResponseHeaderBytes: int64(max(f.cfg.Limits.MaxHeaderBytes, 4096)) * 4,
		// Admission is the worker pool's job, not the transport's.
		MaxConnsPerHost: 0,
		WriteBufferSize: 16 << 10,
		ReadBufferSize:  16 << 10,
	}
}

// h2cTransport reaches h2c:// backends.
func (f *Front) h2cTransport() *backend.H2C {
	d := &net.Dialer{Timeout: f.cfg.Timeouts.Connect, KeepAlive: 30 * time.Second}
	return backend.NewH2C(d.DialContext, f.cfg.Timeouts.Idle)
}

// staleCounter counts the unsound pooled connections of the backend whose key is
// key (scheme://host:port), when it is in the set.
func (f *Front) staleCounter(key string) func() {
	t := f.cfg.Proxy.Table()
	for _, u := range t.Upstreams() {
		for _, b := range u.Backends().Snapshot().All {
			if b.Key == key {
				return b.CountStale
			}
		}
	}
	return nil
}

// failure says in the proxy's own words how a round trip failed: an error may quote
// what the backend sent, and no byte of that reaches the client (DESIGN section 11).
func failure(err error) *exchange.Failure {
	var op *net.OpError
	timeout := isTimeout(err) || errors.Is(err, context.DeadlineExceeded)
	switch {
	case errors.Is(err, errMalformedAnswer), strings.Contains(err.Error(), "malformed HTTP"):
		return exchange.ErrMalformed
	case errors.Is(err, errTLS):
		return exchange.ErrTLS
	case errors.As(err, &op) && op.Op == "dial", errors.Is(err, syscall.ECONNREFUSED):
		if timeout {
			return exchange.ErrConnectTO
		}
		return exchange.ErrConnect
	case timeout:
		return exchange.ErrTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		strings.Contains(err.Error(), "server closed idle connection"):
		return exchange.ErrClosedEOF
	case errors.As(err, &op), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return exchange.ErrConnReset
	}
	return exchange.ErrMalformed
}
