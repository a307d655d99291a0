package nethttp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/switchyard-lb/switchyard/core/exchange"
	"github.com/switchyard-lb/switchyard/core/exchange/exchangetest"
	"github.com/switchyard-lb/switchyard/core/h1"
)

// serve starts a front over urls and returns its address and proxy.
func serve(t *testing.T, s exchange.Settings, urls ...string) (string, *exchange.Proxy) {
	t.Helper()
	px := exchangetest.NewProxy(t, s, urls...)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := Serve(Config{Listener: ln, Proxy: px, Status: func() []byte { return []byte(`{"ok":true}`) }, Limits: h1.DefaultLimits,
		Timeouts: Timeouts{Connect: time.Second, ResponseHeader: 2 * time.Second, Idle: 10 * time.Second, ReadHeader: 2 * time.Second, BodyIdle: 300 * time.Millisecond}, Log: hclog.New(&hclog.LoggerOptions{Level: hclog.Debug})})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = f.Shutdown(ctx)
	})
	return ln.Addr().String(), px
}

// countingBackend answers "ok" and counts the connections it accepted and the
// requests that came with Connection: close.
func countingBackend(t *testing.T) (string, *atomic.Int64, *atomic.Int64) {
	t.Helper()
	var conns, closes atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Close {
			closes.Add(1)
		}
		if _, err := io.ReadAll(r.Body); err != nil {
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL, &conns, &closes
}

func TestReusePolicies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		always bool
	}{{"safe", false}, {"always", true}} {
		t.Run(tc.name, func(t *testing.T) {
			url, conns, _ := countingBackend(t)
			addr, _ := serve(t, exchange.Settings{ReuseAlways: tc.always}, url)
			// 6 clients one after the other, 2 requests each on its own connection.
			for range 6 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(c)
				for range 2 {
					fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatal(err)
					}
					_, _ = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				c.Close()
			}
			n := conns.Load()
			// safe: each client's first request on a connection of its own (6), the
			// second ones on pooled connections; always: everything pooled.
			if tc.always && n > 2 || !tc.always && n < 6 {
				t.Errorf("reuse %s: %d backend connections for 6 clients", tc.name, n)
			}
		})
	}
}

func TestAnswerStreamsAsTheBackendSends(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "first ")
		w.(http.Flusher).Flush()
		<-release
		_, _ = io.WriteString(w, "second")
	}))
	defer srv.Close()
	defer close(release)
	addr, _ := serve(t, exchange.Settings{}, srv.URL)
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "first " {
		t.Fatalf("read %q, %v before the backend finished; want the first piece", buf, err)
	}
}

func TestClientBodyFaultsAreTheClients(t *testing.T) {
	url, _, _ := countingBackend(t)
	addr, px := serve(t, exchange.Settings{}, url)
	for _, tc := range []struct {
		name, request string
		status        int
	}{
		{"body cut short", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", 408},
		{"bad chunk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, tc.request)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), `"code":"bad_request"`) {
				t.Errorf("%d %s, want %d with the proxy's JSON", resp.StatusCode, b, tc.status)
			}
		})
	}
	if f := exchangetest.Backend(px, url).Failures(); f != 0 {
		t.Errorf("the backend was charged %d failures for the clients' faults", f)
	}
}
