//go:build unix

package e2e

// Script strategies (DESIGN section 6.1) in a real core: the script runs in a plugin
// process and is reloaded when its file is saved.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// scriptCore starts a core whose strategy is the script src, saved as s.star beside
// its config file, over backends. It returns the core and the script's path.
func scriptCore(t *testing.T, src string, options any, backends ...string) (*lbInstance, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s.star")
	writeFile(t, path, src, 0o644)
	lb := startCore(t, map[string]any{
		"load_balancer": map[string]any{"strategy": "s"},
		"servers":       backendsConfig(backends...),
		"plugins":       map[string]any{"s": map[string]any{"script": path, "options": options}},
	})
	return lb, path
}

// saveScript replaces the script at path as an editor does: a new file renamed over it.
func saveScript(t *testing.T, path, src string) {
	t.Helper()
	writeFile(t, path+".tmp", src, 0o644)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// servedBy sends one POST with headers and returns the backend that answered.
func servedBy(t *testing.T, url string, headers map[string]string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/requests", nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("POST /requests = %d %s, want 200", resp.StatusCode, readBody(t, resp))
	}
	return readServer(t, resp)
}

func TestScriptStrategySeesOptionsHeadersAndKeepsState(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb, _ := scriptCore(t, `
HEADERS = ["X-Pin"]

def configure(options):
    state["pinned"] = options["pinned"]
    state["turn"] = 0

def pick(req, backends):
    if req.headers.get("x-pin") == "yes":
        for i, b in enumerate(backends):
            if b.url.endswith(state["pinned"]):
                return i
    state["turn"] += 1
    return state["turn"] % len(backends)
`, map[string]any{"pinned": strings.TrimPrefix(b, "http://127.0.0.1")}, a, b)

	for range 5 {
		if got := servedBy(t, lb.url, map[string]string{"X-Pin": "yes"}); got != hostOf(b) {
			t.Errorf("pinned request served by %s, want %s (from the options and the declared header)", got, hostOf(b))
		}
	}
	// Without the header, the turn kept in state alternates the backends.
	prev := servedBy(t, lb.url, nil)
	for range 6 {
		got := servedBy(t, lb.url, nil)
		if got == prev {
			t.Fatalf("two requests in a row served by %s, want state to alternate them", got)
		}
		prev = got
	}
	if st := lb.status(t).Strategy; st.Name != "s" || st.State != "running" || st.Fallbacks != 0 {
		t.Errorf("strategy status %+v, want s running with no fallback", st)
	}
}

func TestScriptSaveAppliesLiveAndBrokenSaveIsRefused(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb, path := scriptCore(t, `
def pick(req, backends):
    state["seen"] = state.get("seen", 0) + 1
    return 0
`, nil, a, b)
	for range 3 {
		if got := servedBy(t, lb.url, nil); got != hostOf(a) {
			t.Fatalf("version 1 sent a request to %s, want %s", got, hostOf(a))
		}
	}

	// Version 2 picks the second backend only if the state of version 1 is still there.
	saveScript(t, path, `
def pick(req, backends):
    return 1 if state.get("seen", 0) >= 3 else 0
`)
	waitUntil(t, "the saved version picking", func() bool { return servedBy(t, lb.url, nil) == hostOf(b) })

	// A broken version changes nothing but the report.
	saveScript(t, path, "def pick(req, backends):\n    return 1\n\ndef oops(:\n")
	waitUntil(t, "the broken version reported", func() bool {
		_, lastErr := lb.generation(t)
		return strings.Contains(lastErr, "s.star:4:")
	})
	for range 5 {
		if got := servedBy(t, lb.url, nil); got != hostOf(b) {
			t.Errorf("after a broken save, served by %s, want the previous version's %s", got, hostOf(b))
		}
	}
	if !strings.Contains(lb.Log(), "s.star:4:") {
		t.Errorf("the log does not name the broken line")
	}
	if n := metric(t, lb, `lb_config_reloads_total\{result="refused"\}`); n != 1 {
		t.Errorf("lb_config_reloads_total{result=\"refused\"} = %v after one refused script save, want 1", n)
	}

	// A name that does not resolve is refused the same way, and a good save clears it.
	saveScript(t, path, "def pick(req, backends):\n    return undefined_name\n")
	waitUntil(t, "the unresolved name reported", func() bool {
		_, lastErr := lb.generation(t)
		return strings.Contains(lastErr, "s.star:2:12: undefined: undefined_name")
	})
	saveScript(t, path, "def pick(req, backends):\n    return 0\n")
	waitUntil(t, "the good save applied and the report cleared", func() bool {
		_, lastErr := lb.generation(t)
		return lastErr == "" && servedBy(t, lb.url, nil) == hostOf(a)
	})
}

func TestScriptFailGives503WithItsMessage(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb, _ := scriptCore(t, `
HEADERS = ["X-Tenant"]

def pick(req, backends):
    if not req.headers.get("x-tenant"):
        fail("no tenant given\t\x01\"quoted\"")
    return 0
`, nil, a, b)
	resp, err := http.Post(lb.url+"/requests", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The message goes into the body as JSON, whatever bytes it holds.
	body := readBody(t, resp)
	var got struct{ Error, Code string }
	if err := json.Unmarshal([]byte(body), &got); err != nil || resp.StatusCode != 503 || !strings.Contains(got.Error, "no tenant given\t\x01\"quoted\"") || got.Code != "no_backend" {
		t.Errorf("pick calling fail() = %d %s (%v), want 503 JSON with its message", resp.StatusCode, body, err)
	}
	if got := servedBy(t, lb.url, map[string]string{"X-Tenant": "acme"}); got != hostOf(a) {
		t.Errorf("with a tenant, served by %s, want %s", got, hostOf(a))
	}
}

func TestScriptRunawayOrBrokenPickCostsNoRequest(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, b := startBackend(t, "-work", "0")
	lb, _ := scriptCore(t, `
def pick(req, backends):
    if req.path == "/requests":
        for i in range(1000000000):
            pass
    return {}["missing"]
`, nil, a, b)
	start := time.Now()
	countBy(t, postMany(lb.url+"/requests", 20, 4))
	if resp, err := http.Get(lb.url + "/other"); err != nil || resp.StatusCode == 502 || resp.StatusCode == 503 {
		t.Errorf("a pick failing at run time: %v %v, want the backend's answer", resp, err)
	} else {
		resp.Body.Close()
	}
	// Each pick fell back: as a bad answer, or as a timeout when runaway picks from
	// several processes queued for the one strategy longer than the pick timeout, or
	// (on a loaded machine) while a data-plane process's pick channel that missed
	// three deadlines in a row was replaced.
	st := lb.status(t).Strategy
	if st.Fallbacks < 21 || st.BadAnswers == 0 || st.State != "running" {
		t.Errorf("strategy status %+v, want every pick fallen back, bad answers among them, and the plugin still running", st)
	}
	log := lb.Log()
	if !strings.Contains(log, "too many steps") && !strings.Contains(log, "key \"missing\" not in dict") {
		t.Errorf("the log does not say why the picks fell back")
	}
	t.Logf("21 picks through the fallback in %v", time.Since(start))
}

func TestBrokenScriptRefusedAtStart(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "s.star"), "def pick(req, backends):\n    return 0\n\ndef configure(options):\n    fail(\"needs options\")\n", 0o644)
	path := filepath.Join(dir, "config.json")
	writeJSON(t, path, map[string]any{
		"load_balancer": map[string]any{"strategy": "s", "load_balancer_port": 0, "admin_addr": ""},
		"plugins":       map[string]any{"s": map[string]any{"script": "s.star"}},
	})
	out, err := runCoreOnce(path)
	if err == nil || !strings.Contains(out, "plugins.s.script") || !strings.Contains(out, "s.star:5:") || !strings.Contains(out, "needs options") {
		t.Errorf("core with a script refusing its options: err %v, output %s; want an error naming the key, the line and the reason", err, out)
	}
}

// A script whose rule must hold even when it fails says "on_failure": "refuse": a
// pick it fails to make (here a bad index for the "gold" tenant's requests) gets 503
// strategy_failed, never the built-in pick, which would reach any backend; the log
// says what went wrong in the script's own words.
func TestScriptOnFailureRefuseFailsClosed(t *testing.T) {
	_, a := startBackend(t, "-work", "0")
	_, gold := startBackend(t, "-work", "0")
	path := filepath.Join(t.TempDir(), "s.star")
	writeFile(t, path, `
HEADERS = ["X-Tenant"]

def pick(req, backends):
    if req.headers.get("x-tenant") == "broken":
        return 7
    for i in range(len(backends)):
        if not backends[i].url.endswith("`+hostOf(gold)+`"):
            return i
    fail("only gold is left")
`, 0o644)
	lb := startCore(t, map[string]any{
		"load_balancer": map[string]any{"strategy": "s"},
		"servers":       backendsConfig(a, gold),
		"plugins":       map[string]any{"s": map[string]any{"script": path, "on_failure": "refuse"}},
	})
	for i := range 20 {
		req, _ := http.NewRequest("POST", lb.url+"/requests", nil)
		req.Header.Set("X-Tenant", "broken")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != 503 || !strings.Contains(body, `"code":"strategy_failed"`) {
			t.Fatalf("request %d with a bad pick = %d %s, want 503 strategy_failed", i, resp.StatusCode, body)
		}
	}
	for range 10 { // the others go where the script says
		if got := servedBy(t, lb.url, nil); got != hostOf(a) {
			t.Fatalf("served by %s, want %s", got, hostOf(a))
		}
	}
	for _, b := range lb.status(t).Backends {
		if b.URL == gold && b.Requests != 0 {
			t.Errorf("the gold backend served %d requests, want none", b.Requests)
		}
	}
	log := lb.Log()
	if !strings.Contains(log, "refusing the request") || !strings.Contains(log, "s.star: pick returned 7 for 2 backends") || strings.Contains(log, "panicked") {
		t.Errorf("the log does not say the script returned a bad index (without calling it a panic):\n%s", log)
	}
}
