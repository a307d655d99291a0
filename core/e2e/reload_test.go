//go:build unix

package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// generation reads config.generation and config.last_error from the status.
func (l *lbInstance) generation(t *testing.T) (int, string) {
	t.Helper()
	st := l.status(t)
	return st.Config.Generation, st.Config.LastError
}

// save writes cfg to the watched file by rename (as editors do) and returns the
// generation it should become.
func (l *lbInstance) save(t *testing.T, cfg map[string]any) int {
	t.Helper()
	gen, _ := l.generation(t)
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	tmp := l.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, l.path); err != nil {
		t.Fatal(err)
	}
	l.cfg = cfg
	return gen + 1
}

// applied waits until the core reaches generation want, then checks that it stays
// there (one save applies once).
func (l *lbInstance) applied(t *testing.T, want int) {
	t.Helper()
	waitUntil(t, "the edit applied", func() bool {
		gen, _ := l.generation(t)
		return gen >= want
	})
	time.Sleep(5 * 100 * time.Millisecond) // five debounce periods: any repeat would show
	if gen, lastErr := l.generation(t); gen != want || lastErr != "" {
		t.Fatalf("generation %d (last_error %q), want exactly %d", gen, lastErr, want)
	}
}

// section returns cfg's section name, creating it.
func section(cfg map[string]any, name string) map[string]any {
	s, _ := cfg[name].(map[string]any)
	if s == nil {
		s = map[string]any{}
		cfg[name] = s
	}
	return s
}

func TestBrokenEditKeepsServing(t *testing.T) {
	_, u := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	if err := os.WriteFile(lb.path, []byte("{\n  \"threadpool\": {\"max_workers\": 5,}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "last_error", func() bool { _, e := lb.generation(t); return e != "" })
	gen, lastErr := lb.generation(t)
	if gen != 1 || !strings.Contains(lastErr, lb.path+":2:") || !strings.Contains(lastErr, "syntax error") {
		t.Errorf("after a broken edit: generation %d, last_error %q; want 1 and file:line:col", gen, lastErr)
	}
	if a := post(http.DefaultClient, lb.url+"/requests"); a.status != 200 {
		t.Errorf("request after a broken edit = %d %s, want 200", a.status, a.body)
	}
	if st := lb.status(t); st.Pool.MaxWorkers != 50 {
		t.Errorf("max_workers = %d after a refused edit, want the running 50", st.Pool.MaxWorkers)
	}
	// Refused values are reported the same way, and a good edit clears the error.
	section(lb.cfg, "threadpool")["min_workers"] = 9
	section(lb.cfg, "threadpool")["max_workers"] = 2
	lb.save(t, lb.cfg)
	waitUntil(t, "the refusal of min > max", func() bool {
		_, e := lb.generation(t)
		return strings.Contains(e, "threadpool.min_workers")
	})
	section(lb.cfg, "threadpool")["min_workers"] = 1
	lb.applied(t, lb.save(t, lb.cfg))
	if st := lb.status(t); st.Pool.MaxWorkers != 2 {
		t.Errorf("max_workers = %d, want 2 from the good edit", st.Pool.MaxWorkers)
	}
	if n := strings.Count(lb.Log(), "config refused"); n != 2 {
		t.Errorf("%d refusals logged, want one per bad edit (2)", n)
	}
}

func TestSaveStylesApplyOnce(t *testing.T) {
	_, u := startBackend(t, "-work", "0")
	dir := t.TempDir()
	// The watched path is a ConfigMap-style symlink: config.json -> ..data/config.json.
	write := func(name string, cfg map[string]any) {
		data, _ := json.Marshal(cfg)
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "config.json"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := map[string]any{"servers": backendsConfig(u),
		"load_balancer": map[string]any{"host": "127.0.0.1", "load_balancer_port": 0, "admin_addr": ""}}
	write("..v1", cfg)
	must(t, os.Symlink("..v1", filepath.Join(dir, "..data")))
	path := filepath.Join(dir, "config.json")
	must(t, os.Symlink(filepath.Join("..data", "config.json"), path))
	p, addr := start(t, coreReady, coreBin, "-config", path)
	lb := &lbInstance{proc: p, url: "http://" + addr, path: path, cfg: cfg}

	// Symlink swap.
	section(cfg, "threadpool")["max_workers"] = 11
	write("..v2", cfg)
	must(t, os.Symlink("..v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	lb.applied(t, 2)

	// Rename over the file (replacing the symlink itself, as an editor would).
	section(cfg, "threadpool")["max_workers"] = 12
	lb.applied(t, lb.save(t, cfg))

	// Truncate and write in place.
	section(cfg, "threadpool")["max_workers"] = 13
	data, _ := json.Marshal(cfg)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	must(t, err)
	_, err = f.Write(data)
	must(t, err)
	must(t, f.Close())
	lb.applied(t, 4)
	if st := lb.status(t); st.Pool.MaxWorkers != 13 {
		t.Errorf("max_workers = %d, want 13 from the last save", st.Pool.MaxWorkers)
	}

	// SIGHUP reloads the file even when the watcher saw no change.
	must(t, p.cmd.Process.Signal(sighup))
	lb.applied(t, 5)
	if log := lb.Log(); !strings.Contains(log, "SIGHUP: reloading") || !strings.Contains(log, "changed=none") {
		t.Errorf("the SIGHUP reload is not logged:\n%s", log)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBackendsAddedAndRemovedLive(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, slow := startBackend(t, "-work", "3s", "-workers", "8")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, slow), "health_check": fastChecks(nil),
		"load_balancer": map[string]any{"strategy": "weighted"}})

	// A slow request in flight on the backend about to be removed.
	inflight := make(chan served, 1)
	go func() {
		for {
			a := post(&http.Client{Timeout: time.Minute}, lb.url+"/requests")
			if a.server == hostOf(slow) || a.err != nil || a.status != 200 {
				inflight <- a
				return
			}
		}
	}()
	waitUntil(t, "a request in flight on the slow backend", func() bool {
		for _, b := range lb.status(t).Backends {
			if b.URL == slow && b.Inflight > 0 {
				return true
			}
		}
		return false
	})
	_, c := startBackend(t, "-work", "0")
	lb.applied(t, lb.save(t, map[string]any{"servers": backendsConfig(a, c), "health_check": fastChecks(nil),
		"load_balancer": lb.cfg["load_balancer"]}))

	waitUntil(t, "the added backend serving", func() bool { return post(http.DefaultClient, lb.url+"/requests").server == hostOf(c) })
	for _, r := range postMany(lb.url+"/requests", 30, 3) {
		if r.status != 200 || r.server == hostOf(slow) {
			t.Fatalf("after removal: %d from %q, want 200 and never the removed backend", r.status, r.server)
		}
	}
	if r := <-inflight; r.err != nil || r.status != 200 || r.server != hostOf(slow) {
		t.Errorf("the in-flight request on the removed backend = %d %q %v, want it to finish with 200", r.status, r.server, r.err)
	}
	if log := lb.Log(); !strings.Contains(log, "backend removed") || !strings.Contains(log, "config applied") {
		t.Errorf("the log does not tell of the change:\n%s", log)
	}
}

func TestPoolResizeAndStrategySwitchUnderLoad(t *testing.T) {
	_, a := startBackend(t, "-work", "2ms", "-workers", "64")
	_, b := startBackend(t, "-work", "2ms", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b)})
	oldPID := lb.status(t).Strategy.PID

	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/requests", stop)
	waitUntil(t, "load running", func() bool { return sent.Load() > 200 })

	section(lb.cfg, "threadpool")["max_workers"] = 3
	section(lb.cfg, "threadpool")["queue_capacity"] = 500
	lb.applied(t, lb.save(t, lb.cfg))
	if st := lb.status(t); st.Pool.MaxWorkers != 3 || st.Pool.QueueCapacity != 500 || st.Pool.Workers > 3 {
		t.Errorf("pool after the edit = %+v, want max 3, queue capacity 500", st.Pool)
	}
	section(lb.cfg, "load_balancer")["strategy"] = "weighted"
	lb.applied(t, lb.save(t, lb.cfg))
	at := sent.Load()
	waitUntil(t, "load after the switch", func() bool { return sent.Load() > at+300 })
	close(stop)
	if bad := failures(); len(bad) > 0 {
		t.Errorf("%d of %d requests failed across the edits, want none; first: %d %s %v", len(bad), sent.Load(), bad[0].status, bad[0].body, bad[0].err)
	}
	st := lb.status(t).Strategy
	if st.Name != "weighted" || st.State != "running" || st.PID == oldPID {
		t.Errorf("strategy = %+v, want weighted running in a new process", st)
	}
}

func TestPortMoves(t *testing.T) {
	_, u := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	old := lb.url
	section(lb.cfg, "load_balancer")["load_balancer_port"] = port
	lb.applied(t, lb.save(t, lb.cfg)) // status is read on the old port while it drains
	newURL := "http://127.0.0.1:" + itoa(port)
	if a := post(http.DefaultClient, newURL+"/requests"); a.status != 200 {
		t.Fatalf("new port: %d %s %v, want 200", a.status, a.body, a.err)
	}
	waitUntil(t, "the old port closed", func() bool {
		c, err := net.Dial("tcp", strings.TrimPrefix(old, "http://"))
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}

// An edit that replaces the whole backend set (a new static list, static backends
// for discovery, discovery for static backends) loses no request under load: the
// leaving backends serve until a new one is up (DESIGN section 12). The default
// health checks (1s, two in a row) make the new ones take about two seconds.
func TestReplacingTheBackendSetLosesNoRequest(t *testing.T) {
	d := startDNS(t)
	var urls []string
	for range 4 {
		_, u := startBackend(t, "-work", "1ms", "-workers", "64")
		urls = append(urls, u)
	}
	const name = "_http._tcp.swap.test"
	d.set(name, "s2.hosts.test:"+portOf(urls[2]), "s3.hosts.test:"+portOf(urls[3]))
	static := func(us ...string) map[string]any { return backendsConfig(us...) }
	srv := map[string]any{"discovery": map[string]any{"srv": name, "resolver": d.addr, "interval": "1s"}}
	for _, tc := range []struct {
		name     string
		from, to map[string]any
		want     []string // the backends serving at the end
	}{
		{"static to static", static(urls[0]), static(urls[1]), []string{urls[1]}},
		{"static to srv", static(urls[0]), srv, []string{urls[2], urls[3]}},
		{"srv to static", srv, static(urls[1]), []string{urls[1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lb := startCore(t, map[string]any{"servers": tc.from})
			waitUntil(t, "the first set up", func() bool { return len(lb.status(t).Backends) > 0 && lb.status(t).Backends[0].Healthy })
			stop := make(chan struct{})
			sent, failures := loadUntil(t, lb.url+"/requests", stop)
			waitUntil(t, "load running", func() bool { return sent.Load() > 100 })
			cfg := map[string]any{"load_balancer": lb.cfg["load_balancer"], "servers": tc.to}
			lb.applied(t, lb.save(t, cfg))
			waitUntil(t, "only the new set in the pool", func() bool {
				st := lb.status(t)
				if len(st.Backends) != len(tc.want) {
					return false
				}
				for _, b := range st.Backends {
					if !b.Healthy || !slices.Contains(tc.want, b.URL) {
						return false
					}
				}
				return true
			})
			before := sent.Load()
			waitUntil(t, "more load on the new set", func() bool { return sent.Load() > before+100 })
			close(stop)
			if bad := failures(); len(bad) > 0 {
				t.Errorf("%d of %d requests failed while the backend set was replaced, want none; first: %d %s %v",
					len(bad), sent.Load(), bad[0].status, bad[0].body, bad[0].err)
			} else {
				t.Logf("%d requests, none failed", sent.Load())
			}
		})
	}
}

// Twenty saves by rename while the access log beside config.json is written by a
// steady load each apply (DESIGN section 12), and the worst time to apply is logged.
// The watcher's own test (config.TestWatchSaveAppliesWhileTheDirectoryIsBusy, a file
// written every 20ms) is what fails without the fix: this one measures it end to end.
func TestSavesApplyWhileTheAccessLogBesideThemIsWritten(t *testing.T) {
	_, u := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(u),
		"load_balancer": map[string]any{"access_log": "access.log"}})
	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/requests", stop)
	waitUntil(t, "load running", func() bool { return sent.Load() > 100 })
	var worst time.Duration
	for i := range 20 {
		cfg := map[string]any{"load_balancer": lb.cfg["load_balancer"], "servers": lb.cfg["servers"],
			"threadpool": map[string]any{"max_workers": 50 + i}}
		start := time.Now()
		want := lb.save(t, cfg)
		for {
			if gen, _ := lb.generation(t); gen >= want {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("save %d not applied after 5s while the access log is written", i+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
		worst = max(worst, time.Since(start))
	}
	close(stop)
	if bad := failures(); len(bad) > 0 {
		t.Errorf("%d requests failed during the saves", len(bad))
	}
	t.Logf("worst time from save to applied, of 20 saves under load with the access log beside the config: %v", worst)
}
