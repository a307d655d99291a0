package e2e

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
)

// TLS, h2c and redirect listeners beside the plaintext one, on the front under test:
// HTTP/2 and HTTP/1.1 by ALPN, certificates by SNI, the status and metrics of each
// listener, and a certificate file rewritten on disk serving within about a second
// (a broken one refused while the old one serves).
func TestListenersTLSH2CAndRedirect(t *testing.T) {
	_, web := startBackend(t, "-work", "0")
	ca := exchangetest.NewCA(t)
	dir := t.TempDir()
	c1, k1 := ca.Issue(t, dir, "lb.test")
	c2, k2 := ca.Issue(t, dir, "*.api.test")
	tlsAddr, h2cAddr, redirAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	lb := startCore(t, map[string]any{
		"servers": backendsConfig(web),
		"listeners": []any{
			map[string]any{"addr": tlsAddr, "tls": map[string]any{"certificates": []any{
				map[string]any{"cert": c1, "key": k1}, map[string]any{"cert": c2, "key": k2}}}},
			map[string]any{"addr": h2cAddr, "h2c": true},
			map[string]any{"addr": redirAddr, "redirect_https": true},
		},
	})

	get := func(c *http.Client, url, sni string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s (SNI %s): %v", url, sni, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	h2 := func(sni string) *http.Client {
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: sni}, ForceAttemptHTTP2: true}}
	}
	resp, body := get(h2("lb.test"), "https://"+tlsAddr+"/echo-headers", "lb.test")
	if resp.Proto != "HTTP/2.0" || !strings.Contains(body, `"X-Forwarded-Proto":["https"]`) {
		t.Errorf("TLS listener: %s %s, want HTTP/2.0 and X-Forwarded-Proto https at the backend", resp.Proto, body)
	}
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "lb.test" {
		t.Errorf("SNI lb.test got %s", cn)
	}
	resp, _ = get(h2("v1.api.test"), "https://"+tlsAddr+"/requests", "v1.api.test")
	if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "*.api.test" {
		t.Errorf("SNI v1.api.test got %s, want the wildcard", cn)
	}
	h1 := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: "lb.test", NextProtos: []string{"http/1.1"}}}}
	if resp, _ := get(h1, "https://"+tlsAddr+"/requests", "lb.test"); resp.Proto != "HTTP/1.1" || resp.StatusCode != 200 {
		t.Errorf("HTTP/1.1 over TLS: %s %d", resp.Proto, resp.StatusCode)
	}
	h2c := &http.Client{Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, n, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, n, a)
	}}}
	if resp, _ := get(h2c, "http://"+h2cAddr+"/requests", ""); resp.Proto != "HTTP/2.0" || resp.StatusCode != 200 {
		t.Errorf("h2c: %s %d, want HTTP/2.0 200", resp.Proto, resp.StatusCode)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+redirAddr+"/a?b=c", nil)
	req.Host = "lb.test"
	if resp, err := noFollow.Do(req); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != 308 || resp.Header.Get("Location") != "https://lb.test/a?b=c" {
		t.Errorf("redirect listener: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	st := lb.status(t)
	if len(st.Listeners) != 4 || !st.Listeners[1].TLS || strings.Join(st.Listeners[1].Protocols, ",") != "h2,http/1.1" ||
		len(st.Listeners[1].Certificates) != 2 || st.Listeners[1].Certificates[1].Names[0] != "*.api.test" || st.Listeners[1].Front != "nethttp" {
		t.Errorf("status listeners = %+v", st.Listeners)
	}
	if v := metric(t, lb, `lb_tls_handshakes_total\{result="ok"\}`); v < 3 {
		t.Errorf("lb_tls_handshakes_total ok = %v, want 3 at least", v)
	}
	if v := metric(t, lb, regexp.QuoteMeta(`lb_tls_certificate_expiry_seconds{listener="`+tlsAddr+`",names="lb.test"}`)); v < float64(time.Now().Unix()) {
		t.Errorf("certificate expiry %v, want a time to come", v)
	}

	// A new certificate written over the files: served within about a second.
	nc, nk := ca.Issue(t, t.TempDir(), "lb.test", "www.lb.test")
	copyOver(t, nk, k1)
	copyOver(t, nc, c1)
	waitUntil(t, "the rewritten certificate served", func() bool {
		c := h2("lb.test")
		defer c.CloseIdleConnections()
		resp, _ := get(c, "https://"+tlsAddr+"/requests", "lb.test")
		return len(resp.TLS.PeerCertificates[0].DNSNames) == 2
	})
	// A broken file: refused and reported; the last good certificate serves on.
	writeFile(t, c1, "not a certificate", 0o644)
	waitUntil(t, "the broken certificate reported", func() bool {
		_, lastErr := lb.generation(t)
		return strings.Contains(lastErr, filepath.Base(c1))
	})
	c := h2("lb.test")
	if resp, _ := get(c, "https://"+tlsAddr+"/requests", "lb.test"); resp.StatusCode != 200 || len(resp.TLS.PeerCertificates[0].DNSNames) != 2 {
		t.Errorf("after a broken write: %d, certificate %v; want the last good one", resp.StatusCode, resp.TLS.PeerCertificates[0].DNSNames)
	}
}

func copyOver(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b), 0o644)
}
