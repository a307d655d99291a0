//go:build unix

package e2e

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"

	"github.com/switchyard-lb/switchyard/core/status"
)

// The event loop in the core's own process ("processes": 1) instead of data-plane
// processes: the rest of the suite runs it in processes, so these tests take the
// basics once through the core's own loops.

// startOneProcess starts a core on cfg with the event loop in the core's own process,
// and checks that the core says so; it skips the test on the other front.
func startOneProcess(t *testing.T, cfg map[string]any) *lbInstance {
	t.Helper()
	if !onEventLoop() {
		t.Skip("the event loop in the core's process is tested in the event loop's run")
	}
	section(cfg, "load_balancer")["processes"] = 1
	lb := startCore(t, cfg)
	if !oneProcessRe.MatchString(lb.Log()) {
		t.Fatalf("the core does not say it listens on the event loop in one process:\n%s", lb.Log())
	}
	return lb
}

var oneProcessRe = regexp.MustCompile(`listening: .*\bengine=eventloop processes=1\b`)

// statusOn reads the status JSON from url.
func statusOn(t *testing.T, url string) status.Status {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var st status.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("decoding the status of %s: %v", url, err)
	}
	return st
}

func TestOneProcessServesAppliesEditsAndAnswersStatus(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	cfg := map[string]any{"servers": backendsConfig(a), "health_check": fastChecks(nil),
		"load_balancer": map[string]any{"strategy": "weighted"}}
	lb := startOneProcess(t, cfg)

	if counts := countBy(t, postMany(lb.url+"/requests", 20, 4)); counts[hostOf(a)] != 20 {
		t.Errorf("answers by backend = %v, want all 20 from %s", counts, hostOf(a))
	}
	cfg["servers"] = backendsConfig(a, b)
	lb.applied(t, lb.save(t, cfg))
	waitUntil(t, "the added backend serving", func() bool { return post(http.DefaultClient, lb.url+"/requests").server == hostOf(b) })
	if counts := countBy(t, postMany(lb.url+"/requests", 40, 4)); counts[hostOf(a)] != 20 || counts[hostOf(b)] != 20 {
		t.Errorf("answers by backend after adding %s = %v, want 20 each (weighted, weight 1 each)", b, counts)
	}
	// The loops answer the status path themselves; the admin address, the control plane.
	for _, url := range []string{lb.url + "/queue/status", lb.admin + "/status"} {
		st := statusOn(t, url)
		if st.Config.Generation != 2 || len(st.Backends) != 2 || st.Process.PID != lb.cmd.Process.Pid {
			t.Errorf("status on %s = generation %d, %d backends, pid %d; want 2, 2 and the core's %d",
				url, st.Config.Generation, len(st.Backends), st.Process.PID, lb.cmd.Process.Pid)
		}
	}
	if pids := planePIDs(lb.Log()); len(pids) != 0 {
		t.Errorf("data-plane processes %v started, want none", pids)
	}
}

func TestOneProcessRetriesAndEjectsAKilledBackend(t *testing.T) {
	_, a := startBackend(t, "-work", "1ms", "-workers", "64")
	victim, b := startBackend(t, "-work", "1ms", "-workers", "64")
	lb := startOneProcess(t, map[string]any{"servers": backendsConfig(a, b), "health_check": fastChecks(nil)})

	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/requests", stop)
	waitUntil(t, "load running", func() bool { return sent.Load() > 300 })
	_ = victim.cmd.Process.Kill()
	waitUntil(t, "the killed backend taken out", func() bool {
		healthy, _, _ := lb.backendState(t, b)
		return !healthy
	})
	at := sent.Load()
	waitUntil(t, "load after the kill", func() bool { return sent.Load() > at+1000 })
	close(stop)
	bad := failures()
	if total := sent.Load(); float64(len(bad)) >= 0.005*float64(total) {
		t.Errorf("%d of %d requests failed, want under 0.5%%; first: %d %s %v", len(bad), total, bad[0].status, bad[0].body, bad[0].err)
	}
	if _, _, served := lb.backendState(t, a); served == 0 {
		t.Errorf("the surviving backend %s served nothing", a)
	}
}
