package lb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/plane"
	"github.com/switchyard-lb/switchyard/core/shm"
	"github.com/switchyard-lb/switchyard/core/strategy"
	"github.com/switchyard-lb/switchyard/sdk"
)

// TestMain lets this test binary serve as the bundled strategy plugins, as the core's
// own binary does.
func TestMain(m *testing.M) {
	if plane.Mode() {
		os.Exit(plane.Run())
	}
	if name, ok := strategy.PluginMode(); ok {
		sdk.Serve(strategy.NewBundled(name))
		return
	}
	os.Exit(m.Run())
}

// backends starts n test backends answering {"server": "bN"}.
func backends(t testing.TB, n int) []config.Backend {
	var out []config.Backend
	for i := range n {
		name := fmt.Sprintf("b%d", i)
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, `{"server": %q}`, name)
		}))
		t.Cleanup(s.Close)
		out = append(out, config.Backend{URL: s.URL, Weight: 1})
	}
	return out
}

// startLB runs a load balancer on a free loopback port with the given strategy.
func startLB(t testing.TB, strategyName string, bs []config.Backend) (*LB, *config.Config) {
	cfg := config.Default()
	cfg.LoadBalancer.Host, cfg.LoadBalancer.Port, cfg.LoadBalancer.AdminAddr = "127.0.0.1", 0, ""
	cfg.LoadBalancer.Strategy = strategyName
	cfg.Servers.Backends = bs
	cfg.Threadpool.MaxWorkers = 64
	if err := cfg.Validate(Bundled); err != nil {
		t.Fatal(err)
	}
	l, err := New(cfg, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := l.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = l.Shutdown(ctx)
	})
	return l, cfg
}

func TestSwitchStrategyUnderLoad(t *testing.T) {
	l, cfg := startLB(t, "leastconn", backends(t, 3))
	oldPID := l.Status().Strategy.PID
	url := "http://" + l.Addr() + "/"

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(url)
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		})
	}
	for sent.Load() < 200 {
		time.Sleep(time.Millisecond)
	}

	next := *cfg
	next.LoadBalancer.Strategy = "weighted"
	if err := l.Apply(&next); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	at := sent.Load()
	for sent.Load() < at+200 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed across the switch, want none", n, sent.Load())
	}
	st := l.Status().Strategy
	if st.Name != "weighted" || st.State != "running" || st.PID == oldPID {
		t.Errorf("strategy after the switch = %+v, want weighted running in a new process", st)
	}
	waitGone(t, oldPID)
}

func TestSwitchToBrokenStrategyKeepsTheOld(t *testing.T) {
	l, cfg := startLB(t, "leastconn", backends(t, 2))
	next := *cfg
	next.LoadBalancer.Strategy = "mine"
	next.Plugins = map[string]config.Plugin{"mine": {Command: "/bin/false"}}
	if err := l.Apply(&next); err == nil {
		t.Fatalf("Apply of a plugin that cannot start = nil, want an error")
	}
	resp, err := http.Get("http://" + l.Addr() + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("after the failed switch: %v, %v; want 200", resp, err)
	}
	resp.Body.Close()
	if st := l.Status().Strategy; st.Name != "leastconn" || st.State != "running" || st.Pending != nil {
		t.Errorf("strategy = %+v, want leastconn still running, nothing pending", st)
	}
}

// waitGone waits until process pid has exited.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || containsZombie(stat) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still running", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsZombie(stat []byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == 'Z'
		}
	}
	return false
}

func TestEngineOf(t *testing.T) {
	auto := config.EngineNetHTTP
	if eventLoopRuns {
		auto = config.EngineEventLoop
	}
	for _, tt := range []struct {
		name, engine string
		backends     []config.Backend
		discovery    *config.Discovery
		want         string
	}{
		{"default, plain http", "", []config.Backend{{URL: "http://127.0.0.1:1"}}, nil, auto},
		// The listener chooses the front, never a backend (DESIGN section 10.3).
		{"default, an https backend", "", []config.Backend{{URL: "http://127.0.0.1:1"}, {URL: "https://127.0.0.1:2"}}, nil, auto},
		{"default, https discovery", "", nil, &config.Discovery{Scheme: "https"}, auto},
		{"named", config.EngineNetHTTP, []config.Backend{{URL: "http://127.0.0.1:1"}}, nil, config.EngineNetHTTP},
	} {
		cfg := config.Default()
		cfg.LoadBalancer.Engine, cfg.Servers.Backends, cfg.Servers.Discovery = tt.engine, tt.backends, tt.discovery
		if got := engineOf(cfg); got != tt.want {
			t.Errorf("%s: engineOf = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestProcessesNeedTheEventLoop(t *testing.T) {
	cfg := config.Default()
	cfg.LoadBalancer.Engine = config.EngineNetHTTP
	cfg.LoadBalancer.Processes = 2
	err := Validate(cfg)
	if err == nil || !strings.Contains(err.Error(), "load_balancer.processes") || !strings.Contains(err.Error(), "nethttp") {
		t.Errorf("Validate(nethttp, 2 processes) = %v, want load_balancer.processes refused for the nethttp front", err)
	}
	cfg.LoadBalancer.Processes = 0
	if err := Validate(cfg); err != nil {
		t.Errorf("Validate(nethttp, default processes) = %v, want nil", err)
	}
	if n := processesOf(cfg); n != 1 {
		t.Errorf("processesOf(nethttp) = %d, want 1", n)
	}
	if !eventLoopRuns {
		return
	}
	// https backends run on the event loop, in as many processes as asked.
	cfg = config.Default()
	cfg.Servers.Backends = []config.Backend{{URL: "https://127.0.0.1:9443", Weight: 1}}
	cfg.LoadBalancer.Processes = 2
	if err := Validate(cfg); err != nil && shm.Shared {
		t.Errorf("Validate(https backend, 2 processes) = %v, want nil", err)
	}
}
