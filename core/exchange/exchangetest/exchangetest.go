// Package exchangetest builds what the tests of a front need: a Proxy over real
// backends, and https backends with certificates to trust or not.
package exchangetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/pool"
	"github.com/switchyard-lb/switchyard/core/strategy"
)

// NewProxy returns a Proxy over the backends at urls (weighted round robin, no
// retries), with a running pool of up to 64 workers; s.StatusPath defaults to
// /lb-status. Every request goes to the default pool.
func NewProxy(t testing.TB, s exchange.Settings, urls ...string) *exchange.Proxy {
	return NewProxyRetries(t, s, 0, urls...)
}

// NewProxyRetries is NewProxy whose pool retries a failed request on up to retries
// more backends.
func NewProxyRetries(t testing.TB, s exchange.Settings, retries int, urls ...string) *exchange.Proxy {
	t.Helper()
	p := pool.New(pool.Config{MinWorkers: 4, MaxWorkers: 64, QueueCapacity: 64, QueueTimeout: time.Second, IdleTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	go p.Run(ctx)
	t.Cleanup(cancel)
	if s.StatusPath == "" {
		s.StatusPath = "/lb-status"
	}
	def := Upstream(backend.DefaultPool, retries, urls...)
	return exchange.New(exchange.Config{Pool: p, Table: exchange.NewTable(1, nil, def), Settings: s})
}

// Upstream returns the pool called name over the backends at urls, picked by
// weighted round robin.
func Upstream(name string, retries int, urls ...string) *exchange.Upstream {
	set := backend.NewPoolSet(name, nil)
	var list []config.Backend
	for _, u := range urls {
		list = append(list, config.Backend{URL: u, Weight: 1})
	}
	set.Update(list)
	return exchange.NewUpstream(name, set, strategy.NewLocal("weighted", strategy.NewBundled("weighted")), retries)
}

// Backend finds the backend with url in p's pools.
func Backend(p *exchange.Proxy, url string) *backend.Backend {
	for _, u := range p.Table().Upstreams() {
		for _, b := range u.Backends().Snapshot().All {
			if b.URL == url {
				return b
			}
		}
	}
	return nil
}

// TLSBackend starts an https backend that answers "name METHOD URI X-Forwarded-Proto
// body", with httptest's certificate, and counts the connections it accepted.
func TLSBackend(t testing.TB, name string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", name)
		_, _ = io.WriteString(w, name+" "+r.Method+" "+r.RequestURI+" "+r.Header.Get("X-Forwarded-Proto")+" "+string(body))
	}))
	srv.TLS = &tls.Config{}
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// Untrusted makes srv present a certificate for 127.0.0.1 that nothing trusts.
func Untrusted(t testing.TB, srv *httptest.Server) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "untrusted"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLS.Certificates = []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}
}

// Trust makes every pool of p verify https backends against srv's certificate
// (httptest's), and returns p.
func Trust(p *exchange.Proxy, srv *httptest.Server) *exchange.Proxy {
	bt := exchange.NewBackendTLS(Trusting(srv), "trust "+srv.URL)
	for _, u := range p.Table().Upstreams() {
		u.SetTLS(bt)
	}
	return p
}

// Trusting is a TLS configuration that trusts srv's certificate (httptest's).
func Trusting(srv *httptest.Server) *tls.Config {
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
