//go:build unix

package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fastChecks is a health_check section with short intervals for tests.
func fastChecks(extra map[string]any) map[string]any {
	hc := map[string]any{"interval": "100ms", "timeout": "1s", "healthy_threshold": 2, "unhealthy_threshold": 2,
		"passive": map[string]any{"consecutive_failures": 3, "ejection_time": "1s"}}
	for k, v := range extra {
		hc[k] = v
	}
	return hc
}

// backendState returns the status of the backend with url.
func (l *lbInstance) backendState(t *testing.T, url string) (healthy bool, state string, served uint64) {
	t.Helper()
	for _, b := range l.status(t).Backends {
		if b.URL == url {
			return b.Healthy, b.State, b.Requests
		}
	}
	t.Fatalf("no backend %s in status", url)
	return false, "", 0
}

func TestKilledBackendCostsAlmostNothingAndComesBack(t *testing.T) {
	_, a := startBackend(t, "-work", "1ms", "-workers", "64")
	victim, b := startBackend(t, "-work", "1ms", "-workers", "64")
	_, c := startBackend(t, "-work", "1ms", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b, c), "health_check": fastChecks(nil)})

	stop := make(chan struct{})
	sent, failures := loadUntil(t, lb.url+"/requests", stop)
	waitUntil(t, "load running", func() bool { return sent.Load() > 300 })
	_ = victim.cmd.Process.Kill()
	waitUntil(t, "the killed backend marked down", func() bool {
		healthy, state, _ := lb.backendState(t, b)
		return !healthy && state == "down"
	})
	at := sent.Load()
	waitUntil(t, "load after the kill", func() bool { return sent.Load() > at+2000 })

	// Back on the same port: traffic returns within healthy_threshold intervals (+1).
	startBackendOn(t, strings.TrimPrefix(b, "http://127.0.0.1:"), "-work", "1ms", "-workers", "64")
	_, _, before := lb.backendState(t, b)
	waitUntil(t, "the restarted backend serving again", func() bool {
		healthy, _, served := lb.backendState(t, b)
		return healthy && served > before+20
	})
	close(stop)
	bad := failures()
	if total := sent.Load(); float64(len(bad)) >= 0.005*float64(total) {
		t.Errorf("%d of %d requests failed, want under 0.5%%; first: %d %s %v", len(bad), total, bad[0].status, bad[0].body, bad[0].err)
	}
	if log := lb.Log(); !strings.Contains(log, "backend down") || !strings.Contains(log, "backend up") {
		t.Errorf("the log does not tell of the backend going down and up")
	}
}

func TestFailingBackendIsEjectedAndReturns(t *testing.T) {
	_, good := startBackend(t, "-work", "0")
	_, bad := startBackend(t, "-work", "0", "-fail-rate", "1")
	lb := startCore(t, map[string]any{"servers": backendsConfig(good, bad), "health_check": fastChecks(nil)})
	client := &http.Client{Timeout: 10 * time.Second}
	for range 20 {
		post(client, lb.url+"/requests")
	}
	healthy, state, _ := lb.backendState(t, bad)
	if healthy || state != "ejected" {
		t.Fatalf("backend answering 500s: healthy %v, state %q; want ejected", healthy, state)
	}
	// While ejected, everything goes to the good backend.
	for _, a := range postMany(lb.url+"/requests", 10, 2) {
		if a.status != 200 || a.server != hostOf(good) {
			t.Fatalf("answer while ejected = %d from %q, want 200 from the good backend", a.status, a.server)
		}
	}
	waitUntil(t, "the ejected backend back after ejection_time", func() bool {
		healthy, state, _ := lb.backendState(t, bad)
		return healthy && state == "up"
	})
	// It fails again: the second ejection lasts twice as long.
	for range 20 {
		post(client, lb.url+"/requests")
	}
	for _, b := range lb.status(t).Backends {
		if b.URL == bad {
			if b.State != "ejected" || b.Ejections != 2 || !strings.Contains(b.Reason, "passive") || b.LastError == "" {
				t.Errorf("after the second run of failures = %+v, want ejected a 2nd time by passive checks", b)
			}
			if d := b.EjectedUntil.Sub(b.Since); d < 1900*time.Millisecond || d > 2100*time.Millisecond {
				t.Errorf("second ejection lasts %v, want 2s (twice ejection_time)", d)
			}
		}
	}
}

func TestHangingHealthCheckDelaysNoOther(t *testing.T) {
	release := make(chan struct{})
	hanging := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			<-release
		}
	}))
	t.Cleanup(func() { close(release); hanging.Close() })
	_, failing := startBackend(t, "-health-fail")
	lb := startCore(t, map[string]any{"servers": backendsConfig(hanging.URL, failing),
		"health_check": fastChecks(map[string]any{"timeout": "1h"})})
	// The failing backend is found down (two checks) while the hanging backend's
	// first check has not ended: its hour-long timeout held up nobody.
	waitUntil(t, "the failing backend down", func() bool {
		_, state, _ := lb.backendState(t, failing)
		return state == "down"
	})
	for _, b := range lb.status(t).Backends {
		if b.URL == hanging.URL && (b.State != "up" || b.LastError != "") {
			t.Errorf("hanging backend = %+v, want still up with its first check pending", b)
		}
	}
}

func TestAllBackendsDownAnswers503ThenRecovers(t *testing.T) {
	pa, a := startBackend(t, "-work", "0")
	pb, b := startBackend(t, "-work", "0")
	lb := startCore(t, map[string]any{"servers": backendsConfig(a, b), "health_check": fastChecks(nil)})
	_ = pa.cmd.Process.Kill()
	_ = pb.cmd.Process.Kill()
	waitUntil(t, "both backends down", func() bool {
		return len(lb.status(t).Backends) == 2 && !lb.status(t).Backends[0].Healthy && !lb.status(t).Backends[1].Healthy
	})
	client := &http.Client{Timeout: 10 * time.Second}
	for range 5 {
		a := post(client, lb.url+"/requests")
		var body struct{ Code string }
		_ = json.Unmarshal(a.body, &body)
		if a.err != nil || a.status != 503 || body.Code != "no_backend" {
			t.Fatalf("with every backend down: %d %s %v, want 503 no_backend at once", a.status, a.body, a.err)
		}
	}
	startBackendOn(t, strings.TrimPrefix(a, "http://127.0.0.1:"), "-work", "0")
	waitUntil(t, "service back", func() bool { return post(client, lb.url+"/requests").status == 200 })
}

func TestGrowingQueueGetsLessTraffic(t *testing.T) {
	_, busy := startBackend(t, "-work", "100ms", "-workers", "1", "-queue", "200")
	_, idle := startBackend(t, "-work", "1ms", "-workers", "64")
	lb := startCore(t, map[string]any{"servers": backendsConfig(busy, idle), "health_check": fastChecks(nil)})

	// Fill the busy backend's own queue directly, behind the proxy's back.
	var wg sync.WaitGroup
	client := &http.Client{Timeout: time.Minute}
	for range 40 {
		wg.Go(func() { post(client, busy+"/requests") })
	}
	t.Cleanup(wg.Wait)
	waitUntil(t, "the busy backend to report its queue", func() bool {
		for _, b := range lb.status(t).Backends {
			if b.URL == busy && b.QueueLength >= 10 {
				return true
			}
		}
		return false
	})
	counts := countBy(t, postMany(lb.url+"/requests", 50, 1))
	if counts[hostOf(busy)] > 5 {
		t.Errorf("with its queue reported full the busy backend got %d of 50, want almost none (counts %v)", counts[hostOf(busy)], counts)
	}
}

// A failed request shows as its backend's last_error in status at once, whichever
// process served it, long before any ejection.
func TestFailedRequestShowsAsLastError(t *testing.T) {
	_, bad := startBackend(t, "-work", "0", "-fail-rate", "1")
	lb := startCore(t, map[string]any{"servers": backendsConfig(bad),
		"health_check": fastChecks(map[string]any{"passive": map[string]any{"consecutive_failures": 1000, "ejection_time": "1s"}})})
	client := &http.Client{Timeout: 10 * time.Second}
	if a := post(client, lb.url+"/requests"); a.status != 500 {
		t.Fatalf("request to a backend answering 500 = %d %s, %v", a.status, a.body, a.err)
	}
	waitUntil(t, "last_error of the failed request", func() bool {
		for _, b := range lb.status(t).Backends {
			if b.URL == bad {
				return b.LastError == "status 500"
			}
		}
		return false
	})
	for _, b := range lb.status(t).Backends {
		if b.State != "up" || b.Failures != 1 {
			t.Errorf("backend after one failed request = %+v, want up with 1 failure", b)
		}
	}
}
