//go:build linux

package engine

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
)

// bridgeGoroutines counts the goroutines that serve a bridge: TLS, and h2c.
func bridgeGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "engine.(*bridge).runTLS(") + strings.Count(string(buf[:n]), "engine.serveH2C(")
}

// An h2c backend's bridge is pooled and reused as any backend connection: requests
// in a row, with bodies or without, take one bridge.
func TestH2CBridgeIsReused(t *testing.T) {
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Proto+" "+r.Method+" "+string(b))
	}), &http2.Server{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	before, opened := bridgeGoroutines(), bridgesOpened.Load()
	addr, px := startEngine(t, exchange.Settings{ReuseAlways: true}, "h2c://"+ln.Addr().String())
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	for i := range 6 {
		var resp *http.Response
		var err error
		want := "HTTP/2.0 GET "
		if i%2 == 0 {
			resp, err = client.Get("http://" + addr + "/")
		} else {
			resp, err = client.Post("http://"+addr+"/", "text/plain", strings.NewReader("body"))
			want = "HTTP/2.0 POST body"
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Fatalf("request %d: %q, want %q", i, b, want)
		}
	}
	if n := bridgesOpened.Load() - opened; n != 1 {
		t.Errorf("6 requests in a row opened %d h2c bridges, want 1", n)
	}
	time.Sleep(100 * time.Millisecond) // a bridge that ended would be seen by now
	if n := bridgeGoroutines() - before; n != 1 {
		t.Errorf("6 requests in a row left %d h2c bridges, want 1", n)
	}
	if n := exchangetest.Backend(px, "h2c://"+ln.Addr().String()).StaleConns(); n != 0 {
		t.Errorf("%d pooled h2c bridges ended under the loop, want none: each request took a new one", n)
	}
}

func TestTLSBridgeEndsWithTheTunnel(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		<-hold // an idle WebSocket peer: says nothing, closes nothing
		c.Close()
	}))
	srv.TLS = &tls.Config{}
	srv.StartTLS()
	defer srv.Close()
	addr, _ := startEngineTrusting(t, srv, exchange.Settings{Idle: 300 * time.Millisecond}, srv.URL)
	before := bridgeGoroutines()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatal(resp, err)
	}
	t.Logf("during tunnel: %d bridge goroutines (before %d)", bridgeGoroutines(), before)
	c.Close()
	time.Sleep(1500 * time.Millisecond) // past the tunnel idle timeout
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
	if n := bridgeGoroutines(); n > before {
		t.Errorf("%d bridge goroutines still running after the tunnel ended (before %d)", n, before)
	}
}
