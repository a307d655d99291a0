package lb

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	_, err = tls.Dial("tcp", ls[4].Addr, &tls.Config{ServerName: "down.test", RootCAs: roots})
	if err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("handshake with the listener without a certificate: %v, want the alert internal_error", err)
	}
}
