package lb

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
)

func TestListenExclusiveRefusesAHeldPort(t *testing.T) {
	ln, err := listen("127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	if other, err := listen(addr, true); err == nil {
		other.Close()
		t.Fatalf("exclusive listen on %s, held by another listener, succeeded", addr)
	}
	if other, err := net.Listen("tcp", addr); err == nil {
		other.Close()
		t.Fatalf("a plain bind of %s, held by another listener, succeeded", addr)
	}
	second, err := listen(addr, false)
	if handOver {
		if err != nil {
			t.Fatalf("replacement listener on %s: %v", addr, err)
		}
		second.Close()
	} else if !errors.Is(err, errNoHandOver) {
		t.Fatalf("replacement listener on %s: %v, want errNoHandOver", addr, err)
	}
}

// A change of the client timeouts keeps the port: the front is replaced where the
// system allows it, and the edit is refused, with the old front serving, elsewhere.
func TestFrontReplacedOnTheSamePort(t *testing.T) {
	l, cfg := startLB(t, "leastconn", backends(t, 1))
	addr := l.Addr()
	get := func() {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET / = %d %s, want 200", resp.StatusCode, body)
		}
	}
	get()
	next := *cfg
	next.LoadBalancer.Timeouts.ReadHeader = config.Duration(3 * time.Second)
	err := l.Apply(&next)
	switch {
	case handOver && err != nil:
		t.Fatalf("Apply with another read_header: %v", err)
	case !handOver && !errors.Is(err, errNoHandOver):
		t.Fatalf("Apply with another read_header: %v, want errNoHandOver", err)
	}
	if got := l.Addr(); got != addr {
		t.Errorf("client address %s after the edit, want %s", got, addr)
	}
	get()
	if want := next.LoadBalancer.Timeouts.ReadHeader.D(); handOver && l.Config().LoadBalancer.Timeouts.ReadHeader.D() != want {
		t.Errorf("read_header in force %s, want %s", l.Config().LoadBalancer.Timeouts.ReadHeader.D(), want)
	}
}

// The event loops bind with SO_REUSEPORT, which alone would share a port another
// process holds: starting on a held port is refused as with the fasthttp engine.
func TestEventLoopRefusesAHeldPort(t *testing.T) {
	if !eventLoopRuns {
		t.Skip("the eventloop engine does not run on this system")
	}
	held, err := listen("127.0.0.1:0", true) // SO_REUSEPORT, as another instance's would be
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cfg := config.Default()
	cfg.LoadBalancer.Host, cfg.LoadBalancer.AdminAddr = "127.0.0.1", ""
	cfg.LoadBalancer.Port = config.Port(held.Addr().(*net.TCPAddr).Port)
	cfg.LoadBalancer.Engine = config.EngineEventLoop
	cfg.Servers.Backends = backends(t, 1)
	l, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Start(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
		t.Fatalf("the eventloop engine started on %s, which another listener holds", held.Addr())
	}
}
