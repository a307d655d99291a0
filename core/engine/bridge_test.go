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
)

func bridgeGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "engine.(*bridge).run")
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
	addr, _ := startEngine(t, exchange.Settings{BackendTLS: exchangetest.Trusting(srv), Idle: 300 * time.Millisecond}, srv.URL)
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
