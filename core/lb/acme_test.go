package lb

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/switchyard-lb/switchyard/core/certs/acmetest"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/status"
)

// Listeners with tls.acme obtain their certificates from Pebble, validated for real
// through the control plane's listeners: tls-alpn-01 on the TLS listener itself,
// http-01 on the redirect_https one. They serve HTTPS with them; the status shows
// each certificate, and a listener whose CA cannot be reached shows why it has none.
func TestACMEListenersServeHTTPSFromPebble(t *testing.T) {
	tlsPort, httpPort := acmetest.FreePort(t), acmetest.FreePort(t)
	p := acmetest.Start(t, acmetest.Options{TLSPort: tlsPort, HTTPPort: httpPort})
	dir := t.TempDir()
	nowhere := "https://127.0.0.1:" + strconv.Itoa(acmetest.FreePort(t)) + "/dir"
	acme := func(domain, directory string, challenges ...string) map[string]any {
		return map[string]any{"domains": []string{domain}, "email": "ops@lb.test", "directory": directory,
			"ca_roots": p.Roots, "storage": "acme/", "challenges": challenges}
	}
	src := map[string]any{
		"load_balancer": map[string]any{"host": "127.0.0.1", "load_balancer_port": 0, "admin_addr": "", "engine": "nethttp"},
		"servers":       map[string]any{"backends": []any{map[string]any{"url": backends(t, 1)[0].URL}}},
		"listeners": []any{
			map[string]any{"addr": "127.0.0.1:" + strconv.Itoa(tlsPort), "tls": map[string]any{"acme": acme("alpn.test", p.Directory, "tls-alpn-01")}},
			map[string]any{"addr": "127.0.0.1:" + strconv.Itoa(acmetest.FreePort(t)), "tls": map[string]any{"acme": acme("http.test", p.Directory, "http-01")}},
			map[string]any{"addr": "127.0.0.1:" + strconv.Itoa(httpPort), "redirect_https": true},
			map[string]any{"addr": "127.0.0.1:" + strconv.Itoa(acmetest.FreePort(t)), "tls": map[string]any{"acme": acme("down.test", nowhere)}},
		},
	}
	l := startFromFile(t, dir, src)

	var ls []status.Listener
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ls = l.Status().Listeners
		if len(ls) == 5 && ls[1].Pending == "" && ls[2].Pending == "" && strings.Contains(ls[4].Pending, "connection refused") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners after 60s: %+v\npebble:\n%s", ls, p.Log())
		}
	}
	for i, name := range map[int]string{1: "alpn.test", 2: "http.test"} {
		c := ls[i].Certificates
		if len(c) != 1 || c[0].Names[0] != name || !strings.Contains(c[0].Issuer, "Pebble") {
			t.Errorf("status listeners[%d].certificates = %+v, want %s's from Pebble", i, c, name)
		}
	}
	if want := "obtaining a certificate for down.test from " + nowhere + ": "; !strings.HasPrefix(ls[4].Pending, want) || len(ls[4].Certificates) != 0 {
		t.Errorf("status of the listener whose CA is down = %+v, want pending %q...", ls[4], want)
	}
	if got := strings.Join(ls[1].Protocols, ","); got != "h2,http/1.1" {
		t.Errorf("status listeners[1].protocols = %s, want h2,http/1.1 (acme-tls/1 is not for clients)", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme")); err != nil {
		t.Errorf("storage beside the config file: %v", err)
	}

	roots := p.IssuerRoots(t)
	for i, name := range map[int]string{1: "alpn.test", 2: "http.test"} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: name}, ForceAttemptHTTP2: true}}
		resp, err := c.Get("https://" + ls[i].Addr + "/")
		if err != nil {
			t.Errorf("GET over %s's listener: %v", name, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		if resp.StatusCode != 200 || resp.Proto != "HTTP/2.0" || !strings.Contains(string(body), `"b0"`) {
			t.Errorf("GET over %s's listener: %s %d %s, want HTTP/2.0 200 from the backend", name, resp.Proto, resp.StatusCode, body)
		}
	}
	_, err := tls.Dial("tcp", ls[4].Addr, &tls.Config{ServerName: "down.test", RootCAs: roots})
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("handshake with the listener without a certificate: %v, want the alert internal_error", err)
	}
}

// startFromFile writes src as dir's config.json and runs a load balancer with it
// until the test ends.
func startFromFile(t *testing.T, dir string, src map[string]any) *LB {
	t.Helper()
	data, _ := json.Marshal(src)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, Bundled)
	if err != nil {
		t.Fatal(err)
	}
	l, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
	})
	return l
}

// A certificate in storage, due for renewal, serves while its renewal fails (here
// the CA cannot be reached); the listener's status shows it with renewal_error,
// and nothing pending.
func TestACMEListenerShowsAFailedRenewal(t *testing.T) {
	dir := t.TempDir()
	nowhere := "https://127.0.0.1:" + strconv.Itoa(acmetest.FreePort(t)) + "/dir"
	stale := storeCertificate(t, filepath.Join(dir, "acme"), nowhere, "stale.test", time.Now().Add(time.Hour))
	l := startFromFile(t, dir, map[string]any{
		"load_balancer": map[string]any{"host": "127.0.0.1", "load_balancer_port": 0, "admin_addr": "", "engine": "nethttp"},
		"servers":       map[string]any{"backends": []any{map[string]any{"url": backends(t, 1)[0].URL}}},
		"listeners": []any{map[string]any{"addr": "127.0.0.1:0", "tls": map[string]any{"acme": map[string]any{
			"domains": []string{"stale.test"}, "directory": nowhere, "storage": "acme/"}}}},
	})

	var ls []status.Listener
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ls = l.Status().Listeners
		if len(ls) == 2 && len(ls[1].Certificates) == 1 && ls[1].Certificates[0].RenewalError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners after 30s: %+v, want stale.test's certificate with a renewal error", ls)
		}
	}
	c := ls[1].Certificates[0]
	want := "renewing the certificate for stale.test from " + nowhere + ": "
	if !strings.HasPrefix(c.RenewalError, want) || !strings.Contains(c.RenewalError, "connection refused") ||
		!c.NotAfter.Equal(stale.NotAfter) || ls[1].Pending != "" {
		t.Errorf("status listeners[1] = %+v, want the stored certificate (not after %v) with renewal error %q... (connection refused), nothing pending",
			ls[1], stale.NotAfter, want)
	}
	data, _ := json.Marshal(l.Status())
	if !strings.Contains(string(data), `"renewal_error":"renewing the certificate for stale.test from `) {
		t.Errorf("status JSON has no renewal_error: %s", data)
	}
	conn, err := tls.Dial("tcp", ls[1].Addr, &tls.Config{ServerName: "stale.test", InsecureSkipVerify: true}) //nolint:gosec // the serial is checked
	if err != nil {
		t.Fatalf("handshake while the renewal fails: %v, want the stored certificate", err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(stale.SerialNumber) != 0 {
		t.Errorf("handshake while the renewal fails: serial %v, want %v, the stored certificate's", got, stale.SerialNumber)
	}
}

// storeCertificate puts a self-signed certificate for domain, valid for the 60 days
// up to notAfter, in ACME storage as if obtained from directory, and returns it.
func storeCertificate(t *testing.T, storage, directory, domain string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: domain},
		DNSNames: []string{domain}, NotBefore: notAfter.Add(-60 * 24 * time.Hour), NotAfter: notAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	issuer := (&certmagic.ACMEIssuer{CA: directory}).IssuerKey()
	for name, data := range map[string][]byte{
		certmagic.StorageKeys.SiteCert(issuer, domain):       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		certmagic.StorageKeys.SitePrivateKey(issuer, domain): pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		certmagic.StorageKeys.SiteMeta(issuer, domain):       []byte(`{"sans": ["` + domain + `"]}`),
	} {
		path := filepath.Join(storage, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}
