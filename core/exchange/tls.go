package exchange

import (
	"crypto/tls"
	"net"
)

// BackendTLS is how a pool reaches its https backends: the verification its
// configuration asks for (ca, tls_skip_verify) and the TLS sessions its new
// connections resume. Pools with the same settings may share one; pools with
// different ones never share a session or a pooled connection.
type BackendTLS struct {
	base     *tls.Config // nil: the system's roots
	key      string
	sessions tls.ClientSessionCache
}

// NewBackendTLS returns the settings base (nil: verify against the system's roots),
// known by key: two BackendTLS with the same key verify the same way.
func NewBackendTLS(base *tls.Config, key string) *BackendTLS {
	return &BackendTLS{base: base, key: key, sessions: tls.NewLRUClientSessionCache(1024)}
}

// defaultTLS is the TLS of pools that set nothing: the system's roots.
var defaultTLS = NewBackendTLS(nil, "")

// Base is the configuration every connection starts from; nil means the system's
// roots.
func (t *BackendTLS) Base() *tls.Config { return t.base }

// For is the configuration of a new connection to the backend at hostport: the
// base, with the backend's host name, the ALPN protocols offered (HTTP/1.1 alone
// unless h2), and the sessions to resume.
func (t *BackendTLS) For(hostport string, h2 bool) *tls.Config {
	var cfg *tls.Config
	if t.base != nil {
		cfg = t.base.Clone()
	} else {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if cfg.ServerName == "" {
		cfg.ServerName, _, _ = net.SplitHostPort(hostport)
	}
	cfg.NextProtos = []string{"http/1.1"}
	if h2 {
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	cfg.ClientSessionCache = t.sessions
	return cfg
}

// TLS is how the pool reaches its https backends.
func (u *Upstream) TLS() *BackendTLS {
	if t := u.tls.Load(); t != nil {
		return t
	}
	return defaultTLS
}

// SetTLS makes t how the pool reaches its https backends from its next new
// connection on. The one in use stays when t verifies the same way, so that an edit
// that changes nothing of it keeps the pool's sessions and pooled connections.
func (u *Upstream) SetTLS(t *BackendTLS) {
	if t.key == u.TLS().key {
		return
	}
	u.tls.Store(t)
}
