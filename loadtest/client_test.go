package main

import (
	"bufio"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// newOneShotBackend starts a server that answers the first request on each
// connection with {"server":"a"} and closes the connection on reading the
// second one, without answering it. It counts the connections it accepts.
func newOneShotBackend(t *testing.T) (url string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n"+`{"server":"a"}`)
				http.ReadRequest(br) // the second request, left unanswered
			}()
		}
	}()
	return "http://" + ln.Addr().String() + "/", conns
}

func TestRunNoRetry(t *testing.T) {
	// The second GET goes on the kept-alive connection, which the backend
	// closes without answering: it fails, and is not sent again on a new
	// connection (where it would succeed, as net/http's Transport would do).
	// The third dials a new connection.
	url, conns := newOneShotBackend(t)
	opts := testOptions(url, 3, 1)
	opts.method = "GET"
	s := mustRun(t, t.Context(), opts, io.Discard)
	if s.Requests != 3 || s.Status["200"] != 2 || s.Errors[errOther] != 1 || conns.Load() != 2 {
		t.Errorf("Requests = %d, Status = %v, Errors = %v, connections = %d; want 3 requests: 2 status 200, 1 other error, on 2 connections",
			s.Requests, s.Status, s.Errors, conns.Load())
	}
}

// newCountingServer starts a server, TLS when tlsOn, that answers with h and
// counts the connections it accepts. It returns the configuration a client
// needs to trust it (nil without TLS).
func newCountingServer(t *testing.T, tlsOn bool, h http.Handler) (*httptest.Server, *atomic.Int64, *tls.Config) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	var cfg *tls.Config
	if tlsOn {
		srv.StartTLS()
		cfg = srv.Client().Transport.(*http.Transport).TLSClientConfig
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, &conns, cfg
}

func TestRunConnections(t *testing.T) {
	answer := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"server":"a"}`) }
	closing := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close") // the server closes the connection after this response
		answer(w, r)
	}
	hints := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		answer(w, r)
	}
	const n = 5
	tests := []struct {
		name      string
		tls       bool
		h         http.HandlerFunc
		wantConns int64 // connections the run opens, sending n requests one at a time
	}{
		{name: "keep-alive", h: answer, wantConns: 1},
		{name: "Connection: close", h: closing, wantConns: n},
		{name: "103 Early Hints", h: hints, wantConns: 1},
		{name: "https keep-alive", tls: true, h: answer, wantConns: 1},
		{name: "https Connection: close", tls: true, h: closing, wantConns: n},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns, cfg := newCountingServer(t, tt.tls, tt.h)
			opts := testOptions(srv.URL+"/requests", n, 1)
			opts.tlsConfig = cfg
			s := mustRun(t, t.Context(), opts, io.Discard)
			if s.Requests != n || s.Status["200"] != n || s.Backends["a"] != n || conns.Load() != tt.wantConns {
				t.Errorf("Requests = %d, Status = %v, Backends = %v, Errors = %v, connections = %d; want %d answers from a on %d connections",
					s.Requests, s.Status, s.Backends, s.Errors, conns.Load(), n, tt.wantConns)
			}
		})
	}
}

func TestRunTLSUntrusted(t *testing.T) {
	// Without the test server's certificate among the roots, every handshake
	// fails, and each is one failure of its own.
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s := mustRun(t, t.Context(), testOptions(srv.URL, 3, 1), io.Discard)
	if s.Requests != 3 || s.Errors[errOther] != 3 || conns.Load() != 3 {
		t.Errorf("Requests = %d, Errors = %v, connections = %d; want 3 other errors on 3 connections",
			s.Requests, s.Errors, conns.Load())
	}
}

func TestNewTarget(t *testing.T) {
	tests := []struct {
		url        string
		addr       string
		serverName string // "" for no TLS
	}{
		{"http://localhost/requests", "localhost:80", ""},
		{"http://127.0.0.1:8000/requests", "127.0.0.1:8000", ""},
		{"https://lb.example/", "lb.example:443", "lb.example"},
		{"https://[::1]:8443/x?y=1", "[::1]:8443", "::1"},
	}
	for _, tt := range tests {
		opts := testOptions(tt.url, 1, 1)
		opts.headers = headers{{"Host", "other.example"}} // not what is dialled
		tgt, err := newTarget(opts)
		if err != nil {
			t.Fatalf("newTarget(%q) error: %v", tt.url, err)
		}
		serverName := ""
		if tgt.tls != nil {
			serverName = tgt.tls.ServerName
		}
		if tgt.addr != tt.addr || serverName != tt.serverName {
			t.Errorf("newTarget(%q) = addr %q, TLS server name %q; want %q, %q", tt.url, tgt.addr, serverName, tt.addr, tt.serverName)
		}
	}
}

// writeCounter is a connection that counts the writes made on it.
type writeCounter struct {
	net.Conn
	writes int
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.writes++
	return c.Conn.Write(p)
}

func TestWorkerExchangeOneWrite(t *testing.T) {
	// A request split over two writes costs a second packet and the target a
	// second read; (*http.Request).Write flushes the head apart from a body
	// it does not know to be in memory.
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	got := make(chan string, 1)
	go func() {
		br := bufio.NewReader(server)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			got <- string(body)
			io.WriteString(server, "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n"+`{"server":"a"}`)
		}
	}()
	opts := testOptions("http://lb.test/requests", 1, 1)
	opts.body = `{"k":"v"}`
	tgt, err := newTarget(opts)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorker(opts, tgt, &counters{}, nil, nil)
	wc := &writeCounter{Conn: client}
	w.conn = wc
	w.br.Reset(wc)
	w.bw.Reset(wc)
	for i := range 2 { // the second request reads the body again
		code, keep, err := w.exchange()
		if code != 200 || !keep || err != nil || w.resp.String() != `{"server":"a"}` {
			t.Fatalf("request %d: exchange() = %d, %v, %v, body %q; want 200, true, nil, {\"server\":\"a\"}", i, code, keep, err, w.resp.String())
		}
		if body := <-got; body != opts.body {
			t.Errorf("request %d: the server got body %q, want %q", i, body, opts.body)
		}
		if wc.writes != i+1 {
			t.Errorf("request %d: %d writes in all, want one per request", i, wc.writes)
		}
	}
}
