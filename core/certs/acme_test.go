package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/certs/acmetest"
)

// serveTLS serves TLS on addr with src's certificates, offering acme-tls/1 as an
// ACME listener does, until the test ends.
func serveTLS(t *testing.T, addr string, src Source) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		ErrorLog: log.New(io.Discard, "", 0)} // failed handshakes are what some tests want
	tc := &tls.Config{GetCertificate: src.GetCertificate, NextProtos: []string{"h2", "http/1.1", "acme-tls/1"}}
	go func() { _ = s.Serve(tls.NewListener(ln, tc)) }()
	t.Cleanup(func() { _ = s.Close() })
}

// startACME starts an ACME source for cfg until the test ends, logging warnings to
// the test's output unless cfg.Log is set.
func startACME(t *testing.T, cfg ACMEConfig) *ACME {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: t.Output()})
	}
	a, err := NewACME(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); a.Stop() })
	return a
}

// waitIssued waits until a has a certificate for each domain.
func waitIssued(t *testing.T, a *ACME, p *acmetest.Pebble) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for a.Pending() != "" {
		select {
		case <-a.Changed():
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no certificate after 60s: pending %q\npebble:\n%s", a.Pending(), p.Log())
		}
	}
}

// handshake connects to addr with SNI name (none for "") and returns the chain
// served, unverified.
func handshake(t *testing.T, addr, name string) ([]*x509.Certificate, error) {
	t.Helper()
	cfg := &tls.Config{ServerName: name, InsecureSkipVerify: true} //nolint:gosec // verified by the caller, against the name it expects
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates, nil
}

// verify checks that chain is a certificate for name that roots trust.
func verify(chain []*x509.Certificate, name string, roots *x509.CertPool) error {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter})
	return err
}

// A certificate obtained by tls-alpn-01, validated for real on the listener that
// serves it, is served by SNI; a second source on the same storage (a restart)
// serves it without a new order.
func TestACMEObtainsByTLSALPNAndKeepsItAcrossARestart(t *testing.T) {
	t.Parallel()
	tlsPort := acmetest.FreePort(t)
	p := acmetest.Start(t, acmetest.Options{TLSPort: tlsPort})
	addr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	storage := filepath.Join(t.TempDir(), "acme")
	cfg := ACMEConfig{Domains: []string{"lb.test", "www.lb.test"}, Email: "ops@lb.test", Directory: p.Directory,
		CARoots: p.Roots, Storage: storage, TLSALPNAddr: addr}
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Log = hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: t.Output()})
	a, err := NewACME(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := &swappable{}
	src.set(a)
	serveTLS(t, addr, src)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitIssued(t, a, p)

	roots := p.IssuerRoots(t)
	for sni, want := range map[string]string{"lb.test": "lb.test", "WWW.lb.test": "www.lb.test", "other.test": "lb.test", "": "lb.test"} {
		chain, err := handshake(t, addr, sni)
		if err == nil {
			err = verify(chain, want, roots)
		}
		if err != nil {
			t.Errorf("SNI %q: %v; want a certificate for %s that Pebble's root verifies", sni, err, want)
		}
	}
	infos := a.Infos()
	if len(infos) != 2 || infos[0].Names[0] != "lb.test" || !strings.Contains(infos[0].Issuer, "Pebble") || infos[0].NotAfter.Before(time.Now()) {
		t.Errorf("Infos() = %+v, want lb.test's and www.lb.test's, from Pebble", infos)
	}
	if n := p.Orders(); n != 2 {
		t.Errorf("pebble took %d orders, want 2 (one per domain)", n)
	}
	if src.challenges.Load() == 0 {
		t.Errorf("pebble validated no tls-alpn-01 challenge on the listener:\n%s", p.Log())
	}
	first, err := handshake(t, addr, "lb.test")
	if err != nil {
		t.Fatal(err)
	}

	// A restart: the next source finds the certificates in storage.
	cancel()
	a.Stop()
	b := startACME(t, cfg)
	src.set(b)
	waitIssued(t, b, p)
	again, err := handshake(t, addr, "lb.test")
	if err != nil || again[0].SerialNumber.Cmp(first[0].SerialNumber) != 0 {
		t.Errorf("after a restart: serial %v, %v; want %v, the certificate obtained before", again[0].SerialNumber, err, first[0].SerialNumber)
	}
	if n := p.Orders(); n != 2 {
		t.Errorf("pebble took %d orders after a restart, want still 2", n)
	}
}

// http-01, validated for real: the CA's request reaches HandleHTTPChallenge on a
// plaintext listener.
func TestACMEObtainsByHTTP01(t *testing.T) {
	t.Parallel()
	httpPort := acmetest.FreePort(t)
	p := acmetest.Start(t, acmetest.Options{HTTPPort: httpPort})
	httpAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
	a := startACMEAfter(t, ACMEConfig{Domains: []string{"api.test"}, Directory: p.Directory, CARoots: p.Roots,
		Storage: t.TempDir(), HTTPAddr: httpAddr}, func(a *ACME) {
		ln, err := net.Listen("tcp", httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !a.HandleHTTPChallenge(w, r) {
				http.NotFound(w, r)
			}
		})}
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(func() { _ = s.Close() })
	})
	waitIssued(t, a, p)
	tlsAddr := "127.0.0.1:" + strconv.Itoa(acmetest.FreePort(t))
	serveTLS(t, tlsAddr, a)
	chain, err := handshake(t, tlsAddr, "api.test")
	if err == nil {
		err = verify(chain, "api.test", p.IssuerRoots(t))
	}
	if err != nil {
		t.Errorf("SNI api.test: %v; want api.test's certificate from Pebble", err)
	}
	if !strings.Contains(p.Log(), "validate w/ HTTP") {
		t.Errorf("pebble did not validate by http-01:\n%s", p.Log())
	}
}

// startACMEAfter is startACME with listen run between NewACME and Start.
func startACMEAfter(t *testing.T, cfg ACMEConfig, listen func(*ACME)) *ACME {
	t.Helper()
	cfg.Log = hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: t.Output()})
	a, err := NewACME(cfg)
	if err != nil {
		t.Fatal(err)
	}
	listen(a)
	ctx, cancel := context.WithCancel(context.Background())
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); a.Stop() })
	return a
}

// While no certificate is issued (here the CA cannot be reached), handshakes fail
// with an alert and Pending names the domain, the CA and the error.
func TestACMEPendingWhileTheCAIsUnreachable(t *testing.T) {
	t.Parallel()
	dir := "https://127.0.0.1:" + strconv.Itoa(acmetest.FreePort(t)) + "/dir"
	addr := "127.0.0.1:" + strconv.Itoa(acmetest.FreePort(t))
	a, err := NewACME(ACMEConfig{Domains: []string{"lb.test"}, Directory: dir, Storage: t.TempDir(), TLSALPNAddr: addr})
	if err != nil {
		t.Fatal(err)
	}
	serveTLS(t, addr, a)
	if got, want := a.Pending(), "obtaining a certificate for lb.test from "+dir; got != want {
		t.Errorf("Pending() before Start = %q, want %q", got, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); a.Stop() })
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.Changed():
	case <-time.After(30 * time.Second):
		t.Fatal("no failed attempt reported within 30s")
	}
	if got := a.Pending(); !strings.HasPrefix(got, "obtaining a certificate for lb.test from "+dir+": ") || !strings.Contains(got, "connection refused") {
		t.Errorf("Pending() = %q, want the domain, the directory and the error", got)
	}
	if infos := a.Infos(); len(infos) != 0 {
		t.Errorf("Infos() = %+v, want none", infos)
	}
	for _, sni := range []string{"lb.test", "other.test", ""} {
		_, err := handshake(t, addr, sni)
		if err == nil || !strings.Contains(err.Error(), "internal error") {
			t.Errorf("handshake with SNI %q: %v, want the alert internal_error", sni, err)
		}
	}
}

// swappable is a Source whose source a test replaces, as a restart would. It
// counts the tls-alpn-01 challenges it sees, and fails them while refuse is set,
// as when the domain no longer leads to the listener.
type swappable struct {
	src        atomic.Pointer[Source]
	challenges atomic.Int64
	refuse     atomic.Bool
}

func (s *swappable) set(src Source) { s.src.Store(&src) }

func (s *swappable) GetCertificate(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if len(h.SupportedProtos) == 1 && h.SupportedProtos[0] == "acme-tls/1" {
		s.challenges.Add(1)
		if s.refuse.Load() {
			return nil, errors.New("not answering tls-alpn-01")
		}
	}
	return (*s.src.Load()).GetCertificate(h)
}

func (s *swappable) Infos() []Info { return (*s.src.Load()).Infos() }

// A certificate whose renewal fails serves on, and Infos says why, until a renewal
// succeeds. A first source obtains it from Pebble; a restart, with the renewal
// window set to the whole lifetime, renews it at once while the listener fails the
// CA's tls-alpn-01 validation (as when the domain no longer leads here); then the
// listener answers again, and certmagic's next attempt, a minute later, renews it.
func TestACMEShowsAFailedRenewalUntilOneSucceeds(t *testing.T) {
	t.Parallel()
	tlsPort := acmetest.FreePort(t)
	p := acmetest.Start(t, acmetest.Options{TLSPort: tlsPort})
	addr := "127.0.0.1:" + strconv.Itoa(tlsPort)
	// An email of its own: without one, certmagic takes the first another source of
	// the process set, and a renewal from another account is refused.
	cfg := ACMEConfig{Domains: []string{"renew.test"}, Email: "ops@renew.test", Directory: p.Directory, CARoots: p.Roots,
		Storage: t.TempDir(), TLSALPNAddr: addr}
	first, err := NewACME(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src := &swappable{}
	src.set(first)
	serveTLS(t, addr, src)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); first.Stop() })
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitIssued(t, first, p)
	old, err := handshake(t, addr, "renew.test")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	first.Stop()

	// The restart: the certificate in storage is due, and renewing it fails.
	src.refuse.Store(true)
	logged := &lines{}
	cfg.renewalWindow = 1
	cfg.Log = hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: io.MultiWriter(t.Output(), logged)})
	a := startACME(t, cfg)
	src.set(a)
	in := waitInfo(t, a, p, 60*time.Second, func(in Info) bool { return in.RenewalError != "" })
	want := "renewing the certificate for renew.test from " + p.Directory + ": "
	if !strings.HasPrefix(in.RenewalError, want) || !in.NotAfter.Equal(old[0].NotAfter) {
		t.Errorf("Infos() = %+v, want the certificate obtained before (not after %v), with renewal error %q...", in, old[0].NotAfter, want)
	}
	if got := a.Pending(); got != "" {
		t.Errorf("Pending() = %q, want \"\": the domain has a certificate", got)
	}
	chain, err := handshake(t, addr, "renew.test")
	if err != nil || chain[0].SerialNumber.Cmp(old[0].SerialNumber) != 0 {
		t.Fatalf("handshake while the renewal fails: %v; want the certificate obtained before, serial %v", err, old[0].SerialNumber)
	}
	const warning = "[WARN]  " // hclog's level column
	if n := logged.count(warning + t.Name() + ": renewing a certificate failed"); n != 1 {
		t.Errorf("logged %d warnings of the failed renewal, want 1:\n%s", n, logged)
	}
	if testing.Short() {
		t.Skip("certmagic tries a failed renewal again after a minute; the rest waits for it")
	}

	// The listener answers the CA again: the next attempt renews the certificate.
	src.refuse.Store(false)
	in = waitInfo(t, a, p, 2*time.Minute, func(in Info) bool { return in.RenewalError == "" && in.NotAfter.After(old[0].NotAfter) })
	chain, err = handshake(t, addr, "renew.test")
	if err == nil {
		err = verify(chain, "renew.test", p.IssuerRoots(t))
	}
	if err != nil || chain[0].SerialNumber.Cmp(old[0].SerialNumber) == 0 || !chain[0].NotAfter.Equal(in.NotAfter) {
		t.Errorf("handshake after the renewal: %v; want the renewed certificate (not after %v), not serial %v", err, in.NotAfter, old[0].SerialNumber)
	}
	if n := logged.count(warning + t.Name() + ": renewing a certificate failed"); n != 1 {
		t.Errorf("logged %d warnings of the failed renewal, want still 1:\n%s", n, logged)
	}
}

// waitInfo waits until a, which has one domain, announces (Changed) a certificate
// for which ok holds, and returns it.
func waitInfo(t *testing.T, a *ACME, p *acmetest.Pebble, within time.Duration, ok func(Info) bool) Info {
	t.Helper()
	deadline := time.After(within)
	for {
		if infos := a.Infos(); len(infos) == 1 && ok(infos[0]) {
			return infos[0]
		}
		select {
		case <-a.Changed():
		case <-deadline:
			t.Fatalf("Infos() after %v = %+v, not the one awaited\npebble:\n%s", within, a.Infos(), p.Log())
		}
	}
}

// lines keeps what a logger writes, for a test to count.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
