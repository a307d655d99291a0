//go:build unix

package strategy

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchyard-lb/switchyard/core/backend"
	"github.com/switchyard-lb/switchyard/core/config"
	"github.com/switchyard-lb/switchyard/core/script"
	"github.com/switchyard-lb/switchyard/plugins/leastconn"
	"github.com/switchyard-lb/switchyard/sdk"
)

// TestMain lets this test binary serve as the bundled strategy plugins, as the core's
// own binary does.
func TestMain(m *testing.M) {
	if name, ok := PluginMode(); ok {
		sdk.Serve(NewBundled(name))
		return
	}
	if path, ok := script.PluginMode(); ok {
		sdk.Serve(script.New(path))
		return
	}
	os.Exit(m.Run())
}

// candidates returns n backends as a snapshot would hold them.
func candidates(t testing.TB, n int) []*backend.Backend {
	s := backend.NewSet()
	var cfg []config.Backend
	for i := range n {
		cfg = append(cfg, config.Backend{URL: fmt.Sprintf("http://127.0.0.1:%d", 10000+i), Weight: i + 1})
	}
	s.Update(cfg, backend.ClientConfig{Connect: time.Second, ReadIdle: time.Second, Idle: time.Second})
	return s.Snapshot().Candidates
}

// startBundled starts a bundled strategy plugin from this test binary.
func startBundled(t testing.TB, name string) *Plugin {
	t.Helper()
	spec, err := BundledSpec(name)
	if err != nil {
		t.Fatal(err)
	}
	spec.RuntimeDir, spec.Log = t.TempDir(), hclog.NewNullLogger()
	p, err := Start(spec)
	if err != nil {
		t.Fatalf("Start(%s): %v", name, err)
	}
	t.Cleanup(p.Close)
	return p
}

func TestPluginPicksAndFallsBackWhenKilled(t *testing.T) {
	p := startBundled(t, "weighted")
	cands := candidates(t, 3) // weights 1, 2, 3
	req := &Request{Method: []byte("GET"), Path: []byte("/")}
	counts := map[string]int{}
	for range 600 {
		b, err := p.Pick(req, cands, nil)
		if err != nil {
			t.Fatal(err)
		}
		counts[b.URL]++
	}
	if counts[cands[0].URL] != 100 || counts[cands[1].URL] != 200 || counts[cands[2].URL] != 300 {
		t.Errorf("600 picks with weights 1:2:3 = %v, want 100/200/300", counts)
	}
	// Excluded backends are not picked.
	for range 10 {
		if b, _ := p.Pick(req, cands, cands[1:]); b != cands[0] {
			t.Fatalf("Pick excluding backends 1 and 2 = %s, want %s", b.URL, cands[0].URL)
		}
	}

	pid := p.Status().PID
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for range 50 { // every pick still answers while the plugin is down
		if b, err := p.Pick(req, cands, nil); b == nil || err != nil {
			t.Fatalf("Pick while the plugin restarts = %v, %v", b, err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for st := p.Status(); st.State != StateRunning || st.PID == pid; st = p.Status() {
		if time.Now().After(deadline) {
			t.Fatalf("status = %+v, want running with a new pid", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := p.Status(); st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
}

// BenchmarkPick compares one pick: the leastconn strategy in-process and as a plugin,
// and least-connections as a Starlark script (core/script/testdata), in-process (the interpreter's cost
// alone) and as a plugin (what a script strategy costs a request).
func BenchmarkPick(b *testing.B) {
	for _, name := range []string{"in-process", "plugin", "script-in-process", "script-plugin"} {
		b.Run(name, func(b *testing.B) {
			var p Picker = NewLocal("leastconn", leastconn.New())
			switch name {
			case "plugin":
				p = startBundled(b, "leastconn")
			case "script-in-process", "script-plugin":
				path, err := filepath.Abs("../script/testdata/least.star")
				if err != nil {
					b.Fatal(err)
				}
				if name == "script-plugin" {
					spec, err := ScriptSpec("least", path)
					if err != nil {
						b.Fatal(err)
					}
					spec.RuntimeDir, spec.Log = b.TempDir(), hclog.NewNullLogger()
					pl, err := Start(spec)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(pl.Close)
					p = pl
					break
				}
				s := script.New(path)
				if err := s.Configure(nil); err != nil {
					b.Fatal(err)
				}
				p = NewLocal("least", s)
			}
			cands := candidates(b, 3)
			req := &Request{Method: []byte("GET"), Host: []byte("example.com"), Path: []byte("/"), RemoteAddr: []byte("127.0.0.1")}
			pid := p.Status().PID
			cpu0 := cpuTime(os.Getpid()) + childCPU(pid, name)
			b.SetParallelism(32) // 64 callers on 2 cores
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := p.Pick(req, cands, nil); err != nil {
						b.Error(err)
					}
				}
			})
			elapsed := time.Since(start)
			cpu := cpuTime(os.Getpid()) + childCPU(pid, name) - cpu0
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "picks/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/1000, "cpu-µs/pick")
			if st := p.Status(); st.Fallbacks > 0 {
				b.Logf("%d of %d picks fell back", st.Fallbacks, b.N)
			}
		})
	}
}

// childCPU is the CPU time of the plugin process, 0 for in-process picks.
func childCPU(pid int, name string) time.Duration {
	if !strings.HasSuffix(name, "plugin") {
		return 0
	}
	return cpuTime(pid)
}

// cpuTime reads a process's user+system CPU time from /proc.
func cpuTime(pid int) time.Duration {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
