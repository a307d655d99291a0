//go:build linux

package engine

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/exchange"
)

func openFDs() int {
	es, _ := os.ReadDir("/proc/self/fd")
	return len(es)
}

// Both sides end cleanly: the backend reads to the end and closes.
func TestTLSBridgeClosesBothEndsAfterATunnel(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		io.WriteString(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		io.Copy(io.Discard, brw) // until the proxy's close_notify
		c.Close()
	}))
	srv.TLS = &tls.Config{}
	srv.StartTLS()
	defer srv.Close()
	addr, _ := startEngineTrusting(t, srv, exchange.Settings{Idle: 5 * time.Second}, srv.URL)
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	time.Sleep(100 * time.Millisecond)
	before := openFDs()
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatal(resp, err)
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, br) // the tunnel ends both ways
		c.Close()
	}
	time.Sleep(300 * time.Millisecond)
	t.Logf("fds before %d after 20 clean tunnels %d", before, openFDs())
}
