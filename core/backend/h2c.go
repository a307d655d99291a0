package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// H2C reaches h2c:// backends: HTTP/2 without TLS, by prior knowledge. Requests
// name them h2c://host:port; they go out as http:// over HTTP/2.
type H2C struct{ t *http2.Transport }

// NewH2C returns the transport, dialing with dial; idle is how long an unused
// connection is kept (0: the transport's default).
func NewH2C(dial func(ctx context.Context, network, addr string) (net.Conn, error), idle time.Duration) *H2C {
	return &H2C{t: &http2.Transport{
		AllowHTTP:          true,
		DisableCompression: true,
		IdleConnTimeout:    idle,
		// An answer that stalls is found by the caller's body timeouts; a dead
		// connection by its pings.
		ReadIdleTimeout: 30 * time.Second,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return dial(ctx, network, addr)
		},
	}}
}

// RoundTrip sends r, whose URL's scheme is h2c, over HTTP/2 without TLS.
func (h *H2C) RoundTrip(r *http.Request) (*http.Response, error) {
	out := *r
	u := *r.URL
	u.Scheme = "http"
	out.URL = &u
	return h.t.RoundTrip(&out)
}

// CloseIdleConnections closes the connections that carry no request.
func (h *H2C) CloseIdleConnections() { h.t.CloseIdleConnections() }

// h2cConn is the HTTP/2 connection to an h2c backend that the event loop's requests
// to it share (see Backend.H2CConn).
type h2cConn struct {
	mu sync.Mutex
	cc *http2.ClientConn
}

// H2CConn returns an HTTP/2 connection to b, an h2c backend, that can take a new
// request, with a stream reserved for it when reserve is set (the caller's next
// RoundTrip on it takes the reservation): the one b's requests share, or, when
// that one cannot (it is gone, or has as many streams as the backend allows), a new
// one that dial opens and t starts. Callers that come while a dial is under way
// share its connection. The connection goes with the backend, and closes itself
// once idle for t's IdleConnTimeout.
func (b *Backend) H2CConn(ctx context.Context, t *http2.Transport, dial func(context.Context) (net.Conn, error), reserve bool) (*http2.ClientConn, error) {
	h := &b.h2c
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err // given up while waiting for another's dial
	}
	if cc := h.cc; cc != nil && (reserve && cc.ReserveNewRequest() || !reserve && cc.CanTakeNewRequest()) {
		return cc, nil
	}
	c, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	cc, err := t.NewClientConn(c)
	if err != nil {
		c.Close()
		return nil, err
	}
	h.cc = cc
	if reserve && !cc.ReserveNewRequest() {
		return nil, errors.New("a new HTTP/2 connection to the backend takes no stream")
	}
	return cc, nil
}
