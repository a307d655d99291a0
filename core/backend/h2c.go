package backend

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
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
