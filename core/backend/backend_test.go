package backend

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-lb/switchyard/core/config"
)

// oneShotBackend answers each connection's first request with the body it received,
// then does after(conn) (close it, or write stray bytes) and serves on.
func oneShotBackend(t *testing.T, after func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for first := true; ; first = false {
					r, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(r.Body)
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
					if first {
						after(c)
					}
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

func TestStalePooledConnectionCostsNoByte(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(net.Conn)
	}{
		{"closed while idle", func(c net.Conn) { c.Close() }},
		{"stray bytes", func(c net.Conn) {
			time.Sleep(10 * time.Millisecond) // after the answer was read
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := oneShotBackend(t, tc.after)
			set := NewSet()
			set.Update([]config.Backend{{URL: url, Weight: 1}}, ClientConfig{Connect: time.Second, ReadIdle: 5 * time.Second, Idle: time.Minute})
			b := set.Snapshot().All[0]
			for i, body := range []string{"first", "second, streamed"} {
				time.Sleep(50 * time.Millisecond) // the close or the stray bytes arrive
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				req.SetRequestURI(url + "/")
				req.Header.SetMethod("POST")
				// A streamed body cannot be sent twice: it must not be touched before
				// the connection is known to be sound.
				req.SetBodyStream(strings.NewReader(body), len(body))
				if err := b.Do(req, resp); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				got, err := io.ReadAll(resp.BodyStream())
				if err != nil || string(got) != body {
					t.Errorf("request %d answered %q (%v), want its own body %q back", i, got, err, body)
				}
				fasthttp.ReleaseResponse(resp)
				fasthttp.ReleaseRequest(req)
			}
			if b.StaleConns() != 1 {
				t.Errorf("StaleConns() = %d, want 1", b.StaleConns())
			}
		})
	}
}

func TestLeavingTheCandidatesClosesIdleConnections(t *testing.T) {
	url := oneShotBackend(t, func(net.Conn) {})
	set := NewSet()
	set.Update([]config.Backend{{URL: url, Weight: 1}}, ClientConfig{Connect: time.Second, ReadIdle: 5 * time.Second, Idle: time.Minute})
	b := set.Snapshot().All[0]
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	req.SetRequestURI(url + "/")
	if err := b.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.BodyStream())
	fasthttp.ReleaseResponse(resp) // the connection goes back to the pool
	if n := b.Client().IdleConnsCount(); n != 1 {
		t.Fatalf("%d idle connections after one request, want 1", n)
	}
	if _, changed := b.SetUp(false, "active: 2 checks in a row failed", "refused"); !changed {
		t.Fatal("SetUp(false) changed nothing")
	}
	if n := b.Client().IdleConnsCount(); n != 0 {
		t.Errorf("%d idle connections kept for a backend that went down, want 0", n)
	}
}

// BenchmarkSoundIdle is the check each reused backend connection gets before a
// request: one non-blocking peek on a real loopback socket.
func BenchmarkSoundIdle(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p := newPeeker(c)
	for b.Loop() {
		if !p.soundIdle() {
			b.Fatal("an idle, open connection is not sound")
		}
	}
}
