//go:build linux || darwin || freebsd || netbsd || openbsd

package engine

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// startEngine serves urls on one loop and returns its address and proxy.
func startEngine(t *testing.T, s exchange.Settings, urls ...string) (string, *exchange.Proxy) {
	t.Helper()
	return serveEngine(t, exchangetest.NewProxy(t, s, urls...))
}

// startEngineTrusting is startEngine whose https backends are verified against
// srv's certificate.
func startEngineTrusting(t *testing.T, srv *httptest.Server, s exchange.Settings, urls ...string) (string, *exchange.Proxy) {
	t.Helper()
	return serveEngine(t, exchangetest.Trust(exchangetest.NewProxy(t, s, urls...), srv))
}

// serveEngine serves px on an engine of one loop.
func serveEngine(t *testing.T, px *exchange.Proxy) (string, *exchange.Proxy) {
	t.Helper()
	e, err := Start(Config{Addr: "127.0.0.1:0", Loops: 1, Proxy: px, Limits: h1.DefaultLimits,
		Status:   func(answer func([]byte)) { answer([]byte("{}")) },
		Timeouts: Timeouts{Connect: time.Second, ResponseHeader: 2 * time.Second, Idle: 10 * time.Second, ReadHeader: 2 * time.Second, BodyIdle: 2 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Shutdown(context.Background()) })
	return e.Addr().String(), px
}

func TestHTTPSBackendThroughTheLoop(t *testing.T) {
	srv, conns := exchangetest.TLSBackend(t, "tls")
	addr, _ := startEngineTrusting(t, srv, exchange.Settings{ReuseAlways: true}, srv.URL)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for i := range 5 {
		resp, err := client.Post("http://"+addr+"/path?q=1", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "tls POST /path?q=1 http body" {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, "tls POST /path?q=1 http body")
		}
	}
	// The TLS connection is kept and reused, as a plain one is.
	if n := conns.Load(); n != 1 {
		t.Errorf("the backend accepted %d TLS connections for 5 requests in a row, want 1", n)
	}

	// A backend that closes its idle connections: the next request goes on a new
	// one, and nothing fails.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	resp, err := client.Get("http://" + addr + "/again")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "tls GET /again") {
		t.Errorf("after the backend closed its connections: %d %q", resp.StatusCode, b)
	}
}

// Each TLS connection's bridge end passes through an *os.File: one that closed its
// descriptor twice (once by hand, once by its finalizer at a garbage collection) would
// close whatever socket reused the number, another bridge's among them.
func TestTLSBridgesSurviveGarbageCollection(t *testing.T) {
	srv, _ := exchangetest.TLSBackend(t, "tls")
	addr, _ := startEngineTrusting(t, srv, exchange.Settings{}, srv.URL)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range 100 {
				// A new client connection each time: under reuse "safe" each
				// request dials a new TLS connection, and a bridge of its own.
				client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
				resp, err := client.Get("http://" + addr + "/")
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !strings.HasPrefix(string(b), "tls GET") {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of 400 requests over new TLS connections failed", n)
	}
}
