package config

import (
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Listener is a client listener beside load_balancer_port's (DESIGN section 4.2):
// plaintext HTTP/1.1, TLS (HTTP/2 and HTTP/1.1 by ALPN), plaintext that also speaks
// HTTP/2 by prior knowledge (h2c), or plaintext that redirects every request to https.
// Every listener serves the same routes.
type Listener struct {
	// Addr is host:port (":8443" for every interface).
	Addr string `json:"addr"`
	// TLS makes the listener terminate TLS with these certificates.
	TLS *ListenerTLS `json:"tls"`
	// RedirectHTTPS answers every request with 308 to the same host and URI on https.
	RedirectHTTPS bool `json:"redirect_https"`
	// H2C also speaks HTTP/2 without TLS, to clients that know it does (prior
	// knowledge), as gRPC clients inside a cluster do.
	H2C bool `json:"h2c"`
	// HTTP2 offers h2 by ALPN on a TLS listener (default true).
	HTTP2 bool `json:"http2"`
}

// listenerFields has Listener's fields without its unmarshaler.
type listenerFields Listener

// UnmarshalJSONFrom reads a listener, with http2 on unless it says otherwise.
func (l *Listener) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := listenerFields{HTTP2: true}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*l = Listener(f)
	return nil
}

// ListenerTLS is a listener's TLS: its certificates and the oldest version it takes.
type ListenerTLS struct {
	// Certificates are PEM pairs; SNI chooses among them by their names (exact,
	// then wildcard), and a client without SNI or with an unknown name gets the
	// first.
	Certificates []CertificateFiles `json:"certificates"`
	// MinVersion is "1.2" (the default) or "1.3".
	MinVersion string `json:"min_version"`
}

// listenerTLSFields has ListenerTLS's fields without its unmarshaler.
type listenerTLSFields ListenerTLS

// UnmarshalJSONFrom reads a listener's TLS, with min_version 1.2 unless given.
func (t *ListenerTLS) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	f := listenerTLSFields{MinVersion: "1.2"}
	if err := json.UnmarshalDecode(dec, &f); err != nil {
		return err
	}
	*t = ListenerTLS(f)
	return nil
}

// CertificateFiles names a certificate chain and its key, PEM files resolved against
// the config file's directory.
type CertificateFiles struct {
	Cert string `json:"cert"`
	Key  string `json:"key"`
}

// TLSVersion is the crypto/tls version of min_version.
func (t *ListenerTLS) TLSVersion() uint16 {
	if t.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// Resolve is path resolved against the config file's directory when it is relative.
func (c *Config) Resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(c.Path), path)
}

// listeners checks the listeners: addresses, one kind each, readable certificates.
func (v *validator) listeners(c *Config) {
	seen := map[string]int{}
	for i, l := range c.Listeners {
		key := fmt.Sprintf("listeners[%d]", i)
		_, port, err := net.SplitHostPort(l.Addr)
		v.check(err == nil && port != "", key+".addr", "must be host:port (\":8443\" for every interface), got %q", l.Addr)
		if j, dup := seen[l.Addr]; dup && l.Addr != "" {
			v.check(false, key+".addr", "%q is listeners[%d]'s too", l.Addr, j)
		}
		seen[l.Addr] = i
		kinds := 0
		for _, on := range []bool{l.TLS != nil, l.RedirectHTTPS, l.H2C} {
			if on {
				kinds++
			}
		}
		v.check(kinds <= 1, key, "takes one of tls, redirect_https and h2c: a TLS listener offers HTTP/2 by ALPN, and a redirecting one serves nothing")
		if l.TLS == nil {
			continue
		}
		t := l.TLS
		v.check(t.MinVersion == "1.2" || t.MinVersion == "1.3", key+".tls.min_version", `must be "1.2" or "1.3", got %q`, t.MinVersion)
		v.check(len(t.Certificates) > 0, key+".tls.certificates", "lists no certificate: give at least one {\"cert\", \"key\"} pair")
		for j, cf := range t.Certificates {
			ck := fmt.Sprintf("%s.tls.certificates[%d]", key, j)
			if cf.Cert == "" || cf.Key == "" {
				v.check(false, ck, "needs both cert and key (PEM files)")
				continue
			}
			_, err := tls.LoadX509KeyPair(c.Resolve(cf.Cert), c.Resolve(cf.Key))
			v.check(err == nil, ck, "cannot be loaded: %v", err)
		}
	}
}
