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

func TestRuntimeWeightKeptUntilTheFileChangesIt(t *testing.T) {
	set := NewSet()
	list := func(wa, wb int) []config.Backend {
		return []config.Backend{{URL: "http://127.0.0.1:1", Weight: wa}, {URL: "http://127.0.0.1:2", Weight: wb}}
	}
	set.Update(list(1, 1), ClientConfig{})
	a := set.Snapshot().All[0]
	if !a.SetWeight(3) || a.Weight() != 3 || !a.RuntimeWeight() {
		t.Fatalf("SetWeight(3): weight %d, runtime %v; want 3 set at run time", a.Weight(), a.RuntimeWeight())
	}
	for _, tc := range []struct {
		name          string
		wa, wb        int
		weight        int
		runtimeWeight bool
	}{
		{"a reload that keeps its weight", 1, 1, 3, true},
		{"a reload that changes another's", 1, 5, 3, true},
		{"a reload that changes its weight", 2, 5, 2, false},
		{"the next reload", 2, 5, 2, false},
	} {
		set.Update(list(tc.wa, tc.wb), ClientConfig{})
		if a.Weight() != tc.weight || a.RuntimeWeight() != tc.runtimeWeight {
			t.Errorf("after %s: weight %d, runtime %v; want %d, %v", tc.name, a.Weight(), a.RuntimeWeight(), tc.weight, tc.runtimeWeight)
		}
	}
}

func TestWeightZeroIsNoCandidate(t *testing.T) {
	set := NewSet()
	set.Update([]config.Backend{{URL: "http://127.0.0.1:1", Weight: 1}, {URL: "http://127.0.0.1:2", Weight: 1}}, ClientConfig{})
	a := set.Snapshot().All[0]
	a.SetWeight(0)
	set.Rebuild()
	if c := set.Snapshot().Candidates; len(c) != 1 || c[0] == a {
		t.Fatalf("candidates after weight 0: %d, want the other backend alone", len(c))
	}
	if h := a.Health(); h.State != StateDrain || h.Reason != "runtime: weight set to 0" {
		t.Errorf("a backend of weight 0 is %s (%q), want drain for its weight, as HAProxy shows it", h.State, h.Reason)
	}
	a.SetWeight(1)
	set.Rebuild()
	if c := set.Snapshot().Candidates; len(c) != 2 {
		t.Errorf("candidates after weight 1 again: %d, want 2", len(c))
	}
	if h := a.Health(); h.State != StateUp || h.Reason != "runtime: weight set to 1" {
		t.Errorf("after weight 1 again the backend is %s (%q), want up", h.State, h.Reason)
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
