//go:build unix

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testPluginConfig runs the testplugin strategy with options.
func testPluginConfig(options map[string]any, backends ...string) map[string]any {
	return map[string]any{
		"load_balancer": map[string]any{"strategy": "testplugin"},
		"servers":       backendsConfig(backends...),
		"plugins":       map[string]any{"testplugin": map[string]any{"command": pluginBin, "options": options}},
	}
}

func TestBundledStrategiesRunAsSubprocesses(t *testing.T) {
	var urls []string
	for range 3 {
		_, u := startBackend(t, "-work", "0")
		urls = append(urls, u)
	}
	servers := map[string]any{"backends": []map[string]any{
		{"url": urls[0], "weight": 1}, {"url": urls[1], "weight": 2}, {"url": urls[2], "weight": 3}}}
	lb := startCore(t, map[string]any{"load_balancer": map[string]any{"strategy": "weighted"}, "servers": servers})

	st := lb.status(t)
	if st.Strategy.Name != "weighted" || st.Strategy.State != "running" || st.Strategy.PID == lb.cmd.Process.Pid || !alive(st.Strategy.PID) {
		t.Fatalf("strategy status = %+v, want weighted running in its own process", st.Strategy)
	}
	counts := countBy(t, postMany(lb.url+"/requests", 600, 1))
	if counts[hostOf(urls[0])] != 100 || counts[hostOf(urls[1])] != 200 || counts[hostOf(urls[2])] != 300 {
		t.Errorf("600 sequential requests with weights 1:2:3 = %v, want exactly 100/200/300", counts)
	}
	if st := lb.status(t); st.Strategy.Fallbacks != 0 {
		t.Errorf("fallbacks = %d, want every pick made by the plugin", st.Strategy.Fallbacks)
	}
}

func TestExternalPluginFromItsOwnModule(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb := startCore(t, testPluginConfig(map[string]any{"prefer": b}, a, b))

	// The options reached Configure: every request goes to the preferred backend.
	counts := countBy(t, postMany(lb.url+"/requests", 30, 3))
	if counts[hostOf(b)] != 30 {
		t.Errorf("counts = %v, want all 30 on %s, the backend the options prefer", counts, b)
	}
	// The plugin's log lines reach the core's log, marked with its name.
	waitUntil(t, "the plugin's log lines in the core's log", func() bool {
		log := lb.Log()
		return strings.Contains(log, "lb.testplugin") && strings.Contains(log, `testplugin configured: mode="" prefer=`) &&
			strings.Contains(log, "testplugin observed 30 outcomes")
	})
}

func TestPluginSeesDeclaredHeaders(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb := startCore(t, testPluginConfig(map[string]any{"mode": "tenant"}, a, b))
	for tenant, want := range []string{a, b} {
		req, _ := http.NewRequest("POST", lb.url+"/requests", nil)
		req.Header.Set("X-Tenant", strconv.Itoa(tenant))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got := readServer(t, resp)
		if got != hostOf(want) {
			t.Errorf("tenant %d served by %s, want %s", tenant, got, want)
		}
	}
	// A strategy that declines a request: 503, with its reason.
	req, _ := http.NewRequest("POST", lb.url+"/requests", nil)
	req.Header.Set("X-Tenant", "7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != 503 || !strings.Contains(body, "no backend for this tenant") {
		t.Errorf("declined request = %d %s, want 503 with the strategy's reason", resp.StatusCode, body)
	}
}

func TestMisbehavingPluginCostsNoRequest(t *testing.T) {
	for _, mode := range []string{"hang", "index99", "panic"} {
		t.Run(mode, func(t *testing.T) {
			_, a := startBackend(t, "-work", "0")
			_, b := startBackend(t, "-work", "0")
			lb := startCore(t, testPluginConfig(map[string]any{"mode": mode}, a, b))
			answers := postMany(lb.url+"/requests", 40, 4)
			counts := countBy(t, answers) // fails the test on any non-200
			if len(counts) != 2 {
				t.Errorf("counts = %v, want the built-in pick to spread over both backends", counts)
			}
			st := lb.status(t)
			if st.Strategy.Fallbacks < 40 {
				t.Errorf("strategy status = %+v, want all 40 picks counted as fallbacks", st.Strategy)
			}
			if !strings.Contains(lb.Log(), "strategy fallback") {
				t.Errorf("the fallback is not logged")
			}
		})
	}
}

func TestKilledPluginIsRestarted(t *testing.T) {
	_, a := startBackend(t, "-work", "1ms", "-workers", "64")
	_, b := startBackend(t, "-work", "1ms", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b)})
	first := lb.status(t).Strategy.PID

	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/requests", stop)
	waitUntil(t, "load running", func() bool { return sent.Load() > 100 })
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a new plugin process", func() bool {
		st := lb.status(t).Strategy
		return st.State == "running" && st.PID != first && st.PID != 0 && st.Restarts == 1
	})
	before := sent.Load()
	waitUntil(t, "more load after the restart", func() bool { return sent.Load() > before+100 })
	close(stop)
	if bad := failures(); len(bad) > 0 {
		t.Errorf("%d of %d requests failed around the plugin's death, want none; first: %d %s %v", len(bad), sent.Load(), bad[0].status, bad[0].body, bad[0].err)
	}
}

func TestCoreKilledLeavesNoPlugin(t *testing.T) {
	_, a := startBackend(t)
	_, b := startBackend(t)
	for _, cfg := range []map[string]any{
		{"servers": backendsConfig(a, b)},
		testPluginConfig(map[string]any{}, a, b),
	} {
		lb := startCore(t, cfg)
		pid := lb.status(t).Strategy.PID
		if !alive(pid) {
			t.Fatalf("plugin pid %d is not running", pid)
		}
		lb.stop(t, syscall.SIGKILL)
		waitUntil(t, "the plugin to exit after the core's SIGKILL", func() bool {
			// A zombie (exited, not yet reaped by init) counts as gone.
			stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			return err != nil || strings.Contains(string(stat), ") Z ")
		})
	}
}

func TestPluginRefusingOptionsStopsStart(t *testing.T) {
	_, a := startBackend(t)
	cfg := testPluginConfig(map[string]any{"refuse": true}, a)
	cfg["load_balancer"].(map[string]any)["load_balancer_port"] = 0
	path := t.TempDir() + "/config.json"
	writeJSON(t, path, cfg)
	out, err := runCoreOnce(path)
	if err == nil || !strings.Contains(out, "testplugin: options refused") {
		t.Errorf("core with a plugin refusing its options: err %v, output %s; want a failure naming the reason", err, out)
	}
}

func TestCommandThatIsNotAPluginIsExplained(t *testing.T) {
	_, a := startBackend(t)
	cfg := testPluginConfig(nil, a)
	cfg["plugins"] = map[string]any{"testplugin": map[string]any{"command": "/bin/echo", "args": []string{"hello"}}}
	cfg["load_balancer"].(map[string]any)["load_balancer_port"] = 0
	cfg["load_balancer"].(map[string]any)["admin_addr"] = ""
	path := t.TempDir() + "/config.json"
	writeJSON(t, path, cfg)
	out, err := runCoreOnce(path)
	if err == nil || !strings.Contains(out, "must call sdk.Serve") || strings.Contains(out, "testplugin.echo") {
		t.Errorf("core with /bin/echo as its strategy: err %v, output %s; want a hint that a plugin calls sdk.Serve", err, out)
	}
}

func TestPluginWithoutOptionsGetsNull(t *testing.T) {
	_, a := startBackend(t)
	cfg := testPluginConfig(nil, a)
	delete(cfg["plugins"].(map[string]any)["testplugin"].(map[string]any), "options") // no options key at all
	lb := startCore(t, cfg)
	waitUntil(t, "the plugin's configure line", func() bool { return strings.Contains(lb.Log(), "testplugin configured") })
	if !strings.Contains(lb.Log(), `testplugin configured: mode="" prefer="" options=null`) {
		t.Errorf("a plugin entry without options: the strategy's Configure did not get the JSON null:\n%s", lb.Log())
	}
}

// TestLaterEditSupersedesAPluginStillStarting: while an edit's plugin starts, the
// status says so under strategy.pending; a plugin that never answers holds up no
// later edit until its start timeout: the later good edit applies at once, and
// the pending plugin goes, with what it started.
func TestLaterEditSupersedesAPluginStillStarting(t *testing.T) {
	_, a := startBackend(t)
	lb := startCore(t, map[string]any{"servers": backendsConfig(a)})
	gen, _ := lb.generation(t)
	script := t.TempDir() + "/sleepy.sh"
	// The marker makes the script's child findable among the machine's processes,
	// and tells it from those of other runs.
	marker := fmt.Sprintf("318.%06d", time.Now().UnixNano()%1e6)
	writeFile(t, script, "#!/bin/sh\nsleep "+marker+"\n", 0o755)
	within := func(d time.Duration, what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				st, _ := json.Marshal(lb.status(t).Strategy)
				t.Fatalf("not within %s: %s (strategy %s)", d, what, st)
			}
		}
	}

	cfg := lb.cfg
	section(cfg, "load_balancer")["strategy"] = "sleepy"
	section(cfg, "load_balancer")["timeouts"] = map[string]any{"plugin_start": "10s"}
	cfg["plugins"] = map[string]any{"sleepy": map[string]any{"command": script}}
	lb.save(t, cfg)
	within(2*time.Second, "the starting plugin shown as pending", func() bool { return lb.status(t).Strategy.Pending != nil })
	st := lb.status(t)
	if p := st.Strategy.Pending; p.Name != "sleepy" || !strings.Contains(p.Reason, "10s") || time.Since(p.Since) > time.Minute {
		t.Errorf("pending = %+v, want sleepy, since just now, with its 10s timeout", *p)
	}
	if st.Strategy.Name == "sleepy" || st.Strategy.State != "running" || st.Config.Generation != gen {
		t.Errorf("while sleepy starts: strategy %+v, generation %d; want the previous one running, generation %d", st.Strategy, st.Config.Generation, gen)
	}
	within(2*time.Second, "the plugin's process running", func() bool { return len(processesWith(marker)) > 0 })

	section(cfg, "load_balancer")["strategy"] = "weighted"
	delete(cfg, "plugins")
	lb.save(t, cfg)
	within(3*time.Second, "the later edit applied", func() bool {
		st := lb.status(t)
		return st.Strategy.Name == "weighted" && st.Config.Generation == gen+1
	})
	st = lb.status(t)
	if st.Strategy.State != "running" || st.Strategy.Pending != nil || st.Config.LastError != "" {
		t.Errorf("after the later edit: strategy %+v, last_error %q; want weighted running, nothing pending, no error", st.Strategy, st.Config.LastError)
	}
	within(2*time.Second, "no process of the superseded plugin left", func() bool { return len(processesWith(marker)) == 0 })
	if !strings.Contains(lb.Log(), "config edit abandoned") {
		t.Errorf("the log does not say the superseded edit was abandoned:\n%s", lb.Log())
	}
}

// A plugin with "on_failure": "refuse" that is killed under load: while it restarts,
// requests get 503 strategy_failed or go where it says, never to a backend its rule
// excludes (the built-in pick would spread them over all).
func TestPluginOnFailureRefuseHoldsWhileItRestarts(t *testing.T) {
	_, a := startBackend(t, "-work", "1ms", "-workers", "64")
	_, excluded := startBackend(t, "-work", "1ms", "-workers", "64")
	cfg := testPluginConfig(map[string]any{"prefer": a}, a, excluded)
	cfg["plugins"].(map[string]any)["testplugin"].(map[string]any)["on_failure"] = "refuse"
	lb := startCore(t, cfg)
	first := lb.status(t).Strategy.PID

	var mu sync.Mutex
	byStatus, leaked := map[int]int{}, 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := post(client, lb.url+"/requests")
				mu.Lock()
				byStatus[s.status]++
				if s.status == 200 && s.server == hostOf(excluded) {
					leaked++
				}
				if s.status == 503 && !strings.Contains(string(s.body), "strategy_failed") {
					byStatus[-1]++
				}
				mu.Unlock()
			}
		})
	}
	waitUntil(t, "load running", func() bool { mu.Lock(); defer mu.Unlock(); return byStatus[200] > 100 })
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "a new plugin process", func() bool {
		st := lb.status(t).Strategy
		return st.State == "running" && st.PID != first && st.PID != 0
	})
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("answers by status: %v", byStatus)
	if leaked > 0 {
		t.Errorf("%d requests reached the backend the strategy excludes while it restarted", leaked)
	}
	if byStatus[-1] > 0 || len(byStatus) > 2 || byStatus[200] == 0 || byStatus[503] == 0 {
		t.Errorf("answers by status %v, want only 200 from the preferred backend and 503 strategy_failed", byStatus)
	}
}
