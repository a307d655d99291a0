package nethttp

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/http2"

	"github.com/switchyard-lb/switchyard/core/certs"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// serveOn serves px on a new loopback listener with cfg's TLS, H2C and RedirectHTTPS.
func serveOn(t *testing.T, px *exchange.Proxy, cfg Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listener, cfg.Proxy, cfg.Limits, cfg.Log = ln, px, h1.DefaultLimits, hclog.NewNullLogger()
	cfg.Status = func() []byte { return []byte(`{}`) }
	cfg.Timeouts = Timeouts{Connect: time.Second, ResponseHeader: 2 * time.Second, Idle: 10 * time.Second, ReadHeader: 2 * time.Second, BodyIdle: 2 * time.Second}
	f := Serve(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// echoBackend answers with the protocol the proxy used towards it and the
// X-Forwarded-Proto it set.
func echoBackend(t *testing.T) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-Proto")+" "+r.Host+" "+r.RequestURI)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

func tlsListener(t *testing.T) (*tls.Config, *exchangetest.CA) {
	t.Helper()
	ca, dir := exchangetest.NewCA(t), t.TempDir()
	c1, k1 := ca.Issue(t, dir, "lb.test")
	c2, k2 := ca.Issue(t, dir, "*.api.test")
	store, err := certs.Load([]certs.Pair{{Cert: c1, Key: k1}, {Cert: c2, Key: k2}})
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{GetCertificate: store.GetCertificate, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, ca
}

// A TLS listener speaks HTTP/2 to a client that offers it by ALPN and HTTP/1.1 to
// one that does not; both reach the backend with X-Forwarded-Proto https, and SNI
// chooses the certificate.
func TestTLSListenerServesHTTP2AndHTTP1(t *testing.T) {
	tc, ca := tlsListener(t)
	var handshakes, failed atomic.Int64
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{}, echoBackend(t)), Config{TLS: tc,
		Handshake: func(ok bool) {
			if ok {
				handshakes.Add(1)
			} else {
				failed.Add(1)
			}
		}})
	for _, tt := range []struct {
		sni, proto string
		h2         bool
	}{{"lb.test", "HTTP/2.0", true}, {"x.api.test", "HTTP/2.0", true}, {"lb.test", "HTTP/1.1", false}} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), ServerName: tt.sni}, ForceAttemptHTTP2: tt.h2}
		if !tt.h2 {
			tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		resp, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/p?q=1")
		if err != nil {
			t.Fatalf("%s over %s: %v", tt.sni, tt.proto, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Proto != tt.proto || !strings.HasPrefix(string(b), "https ") || !strings.HasSuffix(string(b), " /p?q=1") {
			t.Errorf("%s: %s %q, want %s and the backend told https", tt.sni, resp.Proto, b, tt.proto)
		}
		if got := resp.TLS.PeerCertificates[0].Subject.CommonName; tt.sni == "x.api.test" && got != "*.api.test" || tt.sni == "lb.test" && got != "lb.test" {
			t.Errorf("SNI %s got the certificate of %s", tt.sni, got)
		}
		tr.CloseIdleConnections()
	}
	// A client that trusts nothing of ours fails its handshake, counted.
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{ServerName: "lb.test"}}}).Get("https://" + addr + "/"); err == nil {
		t.Error("an untrusting client got an answer")
	}
	time.Sleep(100 * time.Millisecond)
	if handshakes.Load() < 3 || failed.Load() < 1 {
		t.Errorf("handshakes counted %d ok, %d failed; want 3 and 1 at least", handshakes.Load(), failed.Load())
	}
}

// An h2c listener serves HTTP/2 to a client with prior knowledge and HTTP/1.1 to
// the others.
func TestH2CListener(t *testing.T) {
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{}, echoBackend(t)), Config{H2C: true})
	h2c := &http.Client{Transport: &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}}
	for _, c := range []*http.Client{h2c, http.DefaultClient} {
		resp, err := c.Get("http://" + addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "http ") {
			t.Errorf("%s: %d %q", resp.Proto, resp.StatusCode, b)
		}
		if c == h2c && resp.Proto != "HTTP/2.0" {
			t.Errorf("prior knowledge got %s, want HTTP/2.0", resp.Proto)
		}
	}
}

// A redirect_https listener answers every request with 308 to the same host and URI
// on https.
func TestRedirectHTTPSListener(t *testing.T) {
	addr := serveOn(t, exchangetest.NewProxy(t, exchange.Settings{}, echoBackend(t)), Config{RedirectHTTPS: true})
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", "http://"+addr+"/a/b?c=d", strings.NewReader("body"))
	req.Host = "www.example.com:8080"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://www.example.com/a/b?c=d" {
		t.Errorf("%d %q, want 308 to https://www.example.com/a/b?c=d", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The transports of TLS settings that no pool has any more are let go: an edit that
// changes a pool's ca leaves no transport behind.
func TestTransportsOfOldTLSSettingsGo(t *testing.T) {
	srv, _ := exchangetest.TLSBackend(t, "tls")
	px := exchangetest.Trust(exchangetest.NewProxy(t, exchange.Settings{MaxHeaders: 100}, srv.URL), srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := Serve(Config{Listener: ln, Proxy: px, Limits: h1.DefaultLimits, Status: func() []byte { return []byte(`{}`) },
		Timeouts: Timeouts{Connect: time.Second, ResponseHeader: 2 * time.Second, Idle: 10 * time.Second, ReadHeader: 2 * time.Second, BodyIdle: 2 * time.Second}})
	t.Cleanup(func() { _ = f.Shutdown(context.Background()) })
	get := func() {
		t.Helper()
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	for i := range 3 {
		get()
		for _, u := range px.Table().Upstreams() {
			u.SetTLS(exchange.NewBackendTLS(exchangetest.Trusting(srv), fmt.Sprintf("edit %d", i)))
		}
	}
	get()
	n := 0
	f.byTLS.Range(func(_, _ any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d transport pairs after three edits of the pool's TLS, want the one in use", n)
	}
}
